# nixconf.awk: part of the nixos-install STAND-IN of nixbook-sim. When no
# Nix evaluator is at hand it reads the definitions out of Nix files as
# text: for each attribute path set to a string, a boolean or a list of
# strings it prints "path<TAB>value" (strings with a leading "). Nesting
# ({ ... }, lists of sets as "[]") and lib.mk* wrappers are followed;
# anything computed is not. It is a reading aid, not an evaluator.
function emit(path, value) {
    sub(/^\./, "", path)
    sub(/^config\./, "", path)
    printf "%s\t%s\n", path, value
}
function join(a, b) { return a == "" ? b : (b == "" ? a : a "." b) }
{ text = text $0 "\n" }
END {
    n = 0; i = 1; L = length(text)
    while (i <= L) {
        c = substr(text, i, 1)
        if (c == "#") { while (i <= L && substr(text, i, 1) != "\n") i++; continue }
        if (c == "/" && substr(text, i + 1, 1) == "*") {
            j = index(substr(text, i + 2), "*/"); i = j ? i + 2 + j + 1 : L + 1; continue
        }
        if (c == " " || c == "\t" || c == "\n" || c == "\r") { i++; continue }
        if (c == "\"") {
            s = ""; i++
            while (i <= L && (d = substr(text, i, 1)) != "\"") {
                if (d == "\\") { i++; d = substr(text, i, 1) }
                s = s d; i++
            }
            i++
            # A quoted attribute name continues the path it follows.
            if (n > 0 && tok[n] ~ /\.$/) { tok[n] = tok[n] s; continue }
            tok[++n] = "\"" s; continue
        }
        if (c == "'" && substr(text, i + 1, 1) == "'") {
            j = index(substr(text, i + 2), "''"); s = j ? substr(text, i + 2, j - 1) : ""
            i = j ? i + 2 + j + 1 : L + 1
            tok[++n] = "\"" s; continue
        }
        if (c ~ /[A-Za-z0-9_.\/+-]/) {
            s = ""
            while (i <= L && (d = substr(text, i, 1)) ~ /[A-Za-z0-9_.\/'+-]/) { s = s d; i++ }
            tok[++n] = s; continue
        }
        tok[++n] = c; i++
    }
    # Re-join a quoted name with the path after it: fileSystems."/".fsType.
    m = 0
    for (k = 1; k <= n; k++) {
        if (m > 0 && tok[k] ~ /^\.[A-Za-z_]/ && out[m] !~ /^"/ && out[m] ~ /[A-Za-z0-9_\/-]$/) { out[m] = out[m] tok[k]; continue }
        out[++m] = tok[k]
    }

    depth = 0; path[0] = ""; kind[0] = "set"
    for (k = 1; k <= m; k++) {
        t = out[k]
        if (t == "{") {
            name = ""
            if (kind[depth] == "list") name = "[]"
            depth++; path[depth] = join(path[depth - 1], name); kind[depth] = "set"; continue
        }
        if (t == "}" || t == "]") { if (depth > 0) depth--; continue }
        if (t == "[") { depth++; path[depth] = path[depth - 1]; kind[depth] = "list"; continue }
        if (kind[depth] == "list" && t ~ /^"/) { emit(path[depth], t); continue }
        if (t == "inherit") { while (k <= m && out[k] != ";") k++; continue }
        if (out[k + 1] != "=" || t !~ /^[A-Za-z_]/) continue
        # t = value;
        attr = join(path[depth], t)
        k += 2
        # Skip lib.mkDefault, mkForce, mkOverride N, mkIf <cond>, ...
        while (k <= m && out[k] ~ /^(lib\.)?(mk[A-Za-z]+|optionals?|optionalString)$/) {
            fn = out[k]; k++
            if (fn ~ /mkOverride$/) k++
            if (fn ~ /(mkIf|optionals?|optionalString)$/) {
                if (out[k] == "(") { p = 1; k++; while (k <= m && p > 0) { if (out[k] == "(") p++; if (out[k] == ")") p--; k++ } }
                else k++
            }
        }
        v = out[k]
        if (v == "{") { depth++; path[depth] = attr; kind[depth] = "set"; continue }
        if (v == "[") {
            depth++; path[depth] = attr; kind[depth] = "list"
            emit(attr, "[")
            continue
        }
        if (v ~ /^"/ || v == "true" || v == "false" || v ~ /^[0-9]+$/) {
            if (out[k + 1] == ";") emit(attr, v)
        }
    }
}
