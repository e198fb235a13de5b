# The part of nixpkgs' lib that server configurations use, written the way
# nixpkgs writes it so that properties (mkIf, mkDefault, ...) have the same
# shape and eval.nix can merge them like the module system does.
let
  b = builtins;

  lib = rec {
    inherit (b)
      all any attrNames attrValues baseNameOf concatLists concatStringsSep
      dirOf elem elemAt filter foldl' fromJSON genList getAttr hasAttr head
      isAttrs isBool isFloat isFunction isInt isList isPath isString length
      listToAttrs map mapAttrs match pathExists readFile replaceStrings
      removeAttrs split stringLength substring tail toJSON toString typeOf
      trace seq deepSeq;

    # Properties.
    mkOverride = priority: content: { _type = "override"; inherit priority content; };
    mkOptionDefault = mkOverride 1500;
    mkDefault = mkOverride 1000;
    mkImageMediaOverride = mkOverride 60;
    mkForce = mkOverride 50;
    mkVMOverride = mkOverride 10;
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mkOrder = priority: content: { _type = "order"; inherit priority content; };
    mkBefore = mkOrder 500;
    mkAfter = mkOrder 1500;

    # Option declarations are accepted and ignored: only definitions matter.
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = name: mkOption { default = false; description = "Whether to enable ${name}."; };
    mkPackageOption = pkgs: name: extra: mkOption { default = pkgs.${name} or null; };
    mkOptionType = attrs: { _type = "option-type"; } // attrs;
    mkSinkUndeclaredOptions = attrs: { };
    mdDoc = s: s;
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    literalMD = text: { _type = "literalMD"; inherit text; };
    mkRenamedOptionModule = from: to: { };
    mkRemovedOptionModule = path: message: { };
    mkAliasOptionModule = from: to: { };
    mkChangedOptionModule = from: to: f: { };
    mkMergedOptionModule = from: to: f: { };
    types =
      let
        t = name: { _type = "option-type"; inherit name; };
        t1 = name: _: t name;
        t2 = name: _: _: t name;
      in
      {
        str = t "str"; string = t "string"; nonEmptyStr = t "nonEmptyStr";
        singleLineStr = t "singleLineStr"; lines = t "lines"; commas = t "commas";
        bool = t "bool"; int = t "int"; float = t "float"; number = t "number";
        port = t "port"; path = t "path"; package = t "package"; attrs = t "attrs";
        anything = t "anything"; raw = t "raw"; unspecified = t "unspecified";
        listOf = t1 "listOf"; attrsOf = t1 "attrsOf"; lazyAttrsOf = t1 "lazyAttrsOf";
        nullOr = t1 "nullOr"; enum = t1 "enum"; submodule = t1 "submodule";
        submoduleWith = t1 "submoduleWith"; oneOf = t1 "oneOf"; uniq = t1 "uniq";
        functionTo = t1 "functionTo"; separatedString = t1 "separatedString";
        strMatching = t1 "strMatching"; either = t2 "either"; coercedTo = a: f: c: t "coercedTo";
        ints = { positive = t "int"; unsigned = t "int"; u8 = t "int"; u16 = t "int"; u32 = t "int"; between = t2 "int"; };
        numbers = { positive = t "number"; nonnegative = t "number"; between = t2 "number"; };
      };

    # Lists.
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    concatMap = f: xs: b.concatLists (map f xs);
    flatten = x: if b.isList x then concatMap flatten x else [ x ];
    unique = foldl' (acc: e: if elem e acc then acc else acc ++ [ e ]) [ ];
    range = first: last: if first > last then [ ] else genList (n: first + n) (last - first + 1);
    last = xs: elemAt xs (length xs - 1);
    init = xs: genList (elemAt xs) (length xs - 1);
    take = n: xs: genList (elemAt xs) (if n < length xs then n else length xs);
    findFirst = pred: default: xs: let found = filter pred xs; in if found == [ ] then default else head found;
    count = pred: xs: length (filter pred xs);
    imap0 = f: xs: genList (n: f n (elemAt xs n)) (length xs);
    imap1 = f: xs: genList (n: f (n + 1) (elemAt xs n)) (length xs);
    forEach = xs: f: map f xs;
    toList = x: if b.isList x then x else [ x ];
    reverseList = xs: let l = length xs; in genList (n: elemAt xs (l - n - 1)) l;
    sort = b.sort;
    remove = e: filter (x: x != e);
    subtractLists = e: filter (x: !(elem x e));
    intersectLists = e: filter (x: elem x e);

    # Strings.
    optionalString = cond: s: if cond then s else "";
    concatStrings = concatStringsSep "";
    concatMapStrings = f: xs: concatStringsSep "" (map f xs);
    concatMapStringsSep = sep: f: xs: concatStringsSep sep (map f xs);
    concatLines = xs: concatStringsSep "" (map (s: s + "\n") xs);
    hasPrefix = pref: str: substring 0 (stringLength pref) str == pref;
    hasSuffix = suffix: content:
      let lc = stringLength content; ls = stringLength suffix;
      in lc >= ls && substring (lc - ls) lc content == suffix;
    hasInfix = infix: content: b.match ".*${escapeRegex infix}.*" content != null;
    removePrefix = pref: str: if hasPrefix pref str then substring (stringLength pref) (stringLength str) str else str;
    removeSuffix = suffix: str:
      if hasSuffix suffix str then substring 0 (stringLength str - stringLength suffix) str else str;
    escapeRegex = replaceStrings
      [ "\\" "[" "]" "{" "}" "(" ")" "^" "$" "?" "*" "+" "|" "." ]
      [ "\\\\" "\\[" "\\]" "\\{" "\\}" "\\(" "\\)" "\\^" "\\$" "\\?" "\\*" "\\+" "\\|" "\\." ];
    splitString = sep: s: filter b.isString (b.split (escapeRegex sep) s);
    lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
    upperChars = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
    toLower = replaceStrings upperChars lowerChars;
    toUpper = replaceStrings lowerChars upperChars;
    fileContents = file: removeSuffix "\n" (readFile file);
    escapeShellArg = arg: "'${replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
    escapeShellArgs = concatMapStringsSep " " escapeShellArg;
    boolToString = v: if v then "true" else "false";
    strings = lib;
    versionOlder = v1: v2: b.compareVersions v2 v1 == 1;
    versionAtLeast = v1: v2: !(versionOlder v1 v2);
    fixedWidthString = width: filler: str:
      let l = stringLength str; in
      if l >= width then str else fixedWidthString width filler (filler + str);

    # Attribute sets.
    optionalAttrs = cond: as: if cond then as else { };
    nameValuePair = name: value: { inherit name value; };
    filterAttrs = pred: set:
      listToAttrs (concatMap (name: let v = set.${name}; in if pred name v then [ (nameValuePair name v) ] else [ ]) (attrNames set));
    mapAttrs' = f: set: listToAttrs (map (attr: f attr set.${attr}) (attrNames set));
    mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (attrNames attrs);
    genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
    attrByPath = attrPath: default: set:
      if attrPath == [ ] then set
      else if b.isAttrs set && set ? ${head attrPath} then attrByPath (tail attrPath) default set.${head attrPath}
      else default;
    hasAttrByPath = attrPath: set:
      attrPath == [ ] || (b.isAttrs set && set ? ${head attrPath} && hasAttrByPath (tail attrPath) set.${head attrPath});
    getAttrFromPath = attrPath: set:
      attrByPath attrPath (throw "cannot find attribute `${concatStringsSep "." attrPath}'") set;
    setAttrByPath = attrPath: value:
      if attrPath == [ ] then value else { ${head attrPath} = setAttrByPath (tail attrPath) value; };
    recursiveUpdate = lhs: rhs:
      lhs // mapAttrs (n: v: if b.isAttrs v && b.isAttrs (lhs.${n} or null) && !(v ? outPath) then recursiveUpdate lhs.${n} v else v) rhs;
    foldAttrs = op: nul: foldl' (acc: set: acc // mapAttrs (n: v: op v (acc.${n} or nul)) set) { };
    zipAttrsWith = b.zipAttrsWith;
    isDerivation = v: b.isAttrs v && (v.type or null) == "derivation";
    attrsets = lib;

    # Trivia.
    id = x: x;
    const = x: _: x;
    flip = f: a: c: f c a;
    pipe = foldl' (x: f: f x);
    warn = msg: v: v;
    warnIf = cond: msg: v: v;
    assertMsg = pred: msg: pred || throw msg;
    importJSON = path: fromJSON (readFile path);
    fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    fakeSha256 = "0000000000000000000000000000000000000000000000000000";
    trivial = lib;
    lists = lib;
    modules = lib;
    options = lib;
  };
in
lib
