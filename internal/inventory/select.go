package inventory

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nixbook/nixbook/internal/yamlx"
)

// Select returns the hosts a pattern matches, in inventory order, with
// Ansible's pattern semantics:
//
//	all, *            every host
//	ks1, kimsufi      a host, or the hosts of a group and its children
//	ks*, ks?1, ks[12] globs over host and group names
//	~ks[0-9]+         a regular expression (anchored at the start)
//	web[0], web[1:]   subscripts into what the rest of the term matches
//	web:db, web,db    union; !ks3 removes, &prod keeps only common hosts
//	@retry.txt        a file with one pattern per line
//
// Terms are split on commas and on colons outside brackets. Unions are taken
// first, then intersections, then exclusions; a pattern of only exclusions or
// intersections starts from all. A plain name that is neither a host nor a
// group is an error (it is almost always a typo); a glob or regular
// expression that matches nothing is not.
func (inv *Inventory) Select(pattern string) ([]*Host, error) {
	terms, err := inv.patternTerms(pattern, false)
	if err != nil {
		return nil, err
	}
	if len(terms) == 0 {
		return nil, fmt.Errorf("host pattern %q: empty", pattern)
	}
	var union, intersect, exclude []string
	for _, t := range terms {
		switch t[0] {
		case '&':
			intersect = append(intersect, t[1:])
		case '!':
			exclude = append(exclude, t[1:])
		default:
			union = append(union, t)
		}
	}
	if len(union) == 0 {
		union = []string{allGroup}
	}
	m := newMatcher(inv)
	selected := make([]bool, len(inv.Hosts))
	for _, t := range union {
		hit, err := m.match(t)
		if err != nil {
			return nil, err
		}
		for i, ok := range hit {
			selected[i] = selected[i] || ok
		}
	}
	for _, t := range intersect {
		hit, err := m.match(t)
		if err != nil {
			return nil, err
		}
		for i, ok := range hit {
			selected[i] = selected[i] && ok
		}
	}
	for _, t := range exclude {
		hit, err := m.match(t)
		if err != nil {
			return nil, err
		}
		for i, ok := range hit {
			selected[i] = selected[i] && !ok
		}
	}
	hosts := []*Host{}
	for i, ok := range selected {
		if ok {
			hosts = append(hosts, inv.Hosts[i])
		}
	}
	return hosts, nil
}

// Limit keeps the hosts of an earlier selection that a --limit pattern
// matches, in their order. An empty pattern limits nothing.
func (inv *Inventory) Limit(hosts []*Host, pattern string) ([]*Host, error) {
	if strings.TrimSpace(pattern) == "" {
		return hosts, nil
	}
	allowed, err := inv.Select(pattern)
	if err != nil {
		return nil, fmt.Errorf("limit: %w", err)
	}
	keep := make(map[string]bool, len(allowed))
	for _, h := range allowed {
		keep[h.Name] = true
	}
	limited := []*Host{}
	for _, h := range hosts {
		if keep[h.Name] {
			limited = append(limited, h)
		}
	}
	return limited, nil
}

// patternTerms splits a pattern into terms and reads @files. A comma-separated
// item that is a host name is kept whole, so IPv6 names survive the colon
// split.
func (inv *Inventory) patternTerms(pattern string, inFile bool) ([]string, error) {
	var terms []string
	for _, item := range strings.Split(pattern, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.HasPrefix(item, "@") {
			if inFile {
				return nil, fmt.Errorf("host pattern %q: @file inside a pattern file", item)
			}
			fileTerms, err := inv.patternFile(item[1:])
			if err != nil {
				return nil, err
			}
			terms = append(terms, fileTerms...)
			continue
		}
		if _, ok := inv.Host(strings.TrimLeft(item, "!&")); ok {
			terms = append(terms, item)
			continue
		}
		terms = append(terms, splitOutsideBrackets(item, ':')...)
	}
	for _, t := range terms {
		if t == "!" || t == "&" {
			return nil, fmt.Errorf("host pattern %q: %s without a name", pattern, t)
		}
	}
	return terms, nil
}

// patternFile reads a file of patterns, one per line (a retry file, say);
// blank lines and # comments are skipped.
func (inv *Inventory) patternFile(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("host pattern @: missing file name")
	}
	data, err := yamlx.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("host pattern file: %w", err)
	}
	var terms []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lineTerms, err := inv.patternTerms(line, true)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		terms = append(terms, lineTerms...)
	}
	return terms, nil
}

func splitOutsideBrackets(s string, sep rune) []string {
	var parts []string
	depth, start := 0, 0
	for i, c := range s {
		switch {
		case c == '[':
			depth++
		case c == ']' && depth > 0:
			depth--
		case c == sep && depth == 0:
			parts = append(parts, s[start:i])
			start = i + len(string(sep))
		}
	}
	parts = append(parts, s[start:])
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// matcher resolves single terms against an inventory.
type matcher struct {
	inv    *Inventory
	groups []string // every group name: the Groups map and each host's groups
	known  map[string]bool
}

func newMatcher(inv *Inventory) *matcher {
	m := &matcher{inv: inv, known: map[string]bool{}}
	add := func(g string) {
		if !m.known[g] {
			m.known[g] = true
			m.groups = append(m.groups, g)
		}
	}
	add(allGroup)
	for name := range inv.Groups {
		add(name)
	}
	for _, h := range inv.Hosts {
		for _, g := range h.Groups {
			add(g)
		}
	}
	return m
}

// hostsOfGroup marks the hosts in a group, `all` being every host even in
// hand-built inventories.
func (m *matcher) hostsOfGroup(hit []bool, group string) {
	for i, h := range m.inv.Hosts {
		if group == allGroup || h.InGroup(group) {
			hit[i] = true
		}
	}
}

var subscriptPattern = regexp.MustCompile(`^(.+)\[(?:(-?[0-9]+)|([0-9]+):([0-9]*))\]$`)

// match returns which hosts (by index in inventory order) one term matches.
func (m *matcher) match(term string) ([]bool, error) {
	hit := make([]bool, len(m.inv.Hosts))
	if strings.HasPrefix(term, "~") {
		re, err := regexp.Compile(`^(?:` + term[1:] + `)`)
		if err != nil {
			return nil, fmt.Errorf("host pattern %q: %w", term, err)
		}
		m.matchNames(hit, re)
		return hit, nil
	}

	expr := term
	sub := subscriptPattern.FindStringSubmatch(term)
	if sub != nil {
		expr = sub[1]
	}
	switch {
	case strings.ContainsAny(expr, "*?["):
		re, err := globRegexp(expr)
		if err != nil {
			return nil, fmt.Errorf("host pattern %q: %w", term, err)
		}
		m.matchNames(hit, re)
	default:
		if h, ok := m.inv.Host(expr); ok {
			for i, candidate := range m.inv.Hosts {
				if candidate == h {
					hit[i] = true
				}
			}
		} else if m.known[expr] {
			m.hostsOfGroup(hit, expr)
		} else {
			return nil, fmt.Errorf("host pattern %q: no host or group named %s", term, expr)
		}
	}
	if sub != nil {
		return applySubscript(hit, term, sub)
	}
	return hit, nil
}

// matchNames marks hosts whose name matches and the hosts of groups whose
// name matches.
func (m *matcher) matchNames(hit []bool, re *regexp.Regexp) {
	for _, g := range m.groups {
		if re.MatchString(g) {
			m.hostsOfGroup(hit, g)
		}
	}
	for i, h := range m.inv.Hosts {
		if re.MatchString(h.Name) {
			hit[i] = true
		}
	}
}

// applySubscript keeps the n-th matched host ([n], negative from the end) or
// a range of them ([n:m] inclusive, [n:] to the end).
func applySubscript(hit []bool, term string, sub []string) ([]bool, error) {
	var matched []int
	for i, ok := range hit {
		if ok {
			matched = append(matched, i)
		}
	}
	out := make([]bool, len(hit))
	if sub[2] != "" {
		n, err := strconv.Atoi(sub[2])
		if err != nil {
			return nil, fmt.Errorf("host pattern %q: bad index: %w", term, err)
		}
		i := n
		if i < 0 {
			i += len(matched)
		}
		if i < 0 || i >= len(matched) {
			return nil, fmt.Errorf("host pattern %q: index %d is out of range (%s matches %d hosts)", term, n, sub[1], len(matched))
		}
		out[matched[i]] = true
		return out, nil
	}
	start, err := strconv.Atoi(sub[3])
	if err != nil {
		return nil, fmt.Errorf("host pattern %q: bad index: %w", term, err)
	}
	end := len(matched) - 1
	if sub[4] != "" {
		if end, err = strconv.Atoi(sub[4]); err != nil {
			return nil, fmt.Errorf("host pattern %q: bad index: %w", term, err)
		}
	}
	for i := start; i <= end && i < len(matched); i++ {
		out[matched[i]] = true
	}
	return out, nil
}

// globRegexp translates a shell glob as Python's fnmatch does: * and ? match
// any character (dots included), [seq] and [!seq] are classes, and an
// unclosed [ is literal.
func globRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^(?:")
	runes := []rune(glob)
	for i := 0; i < len(runes); i++ {
		switch c := runes[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := i + 1
			if j < len(runes) && runes[j] == '!' {
				j++
			}
			if j < len(runes) && runes[j] == ']' {
				j++
			}
			for j < len(runes) && runes[j] != ']' {
				j++
			}
			if j >= len(runes) {
				b.WriteString(`\[`)
				continue
			}
			class := runes[i+1 : j]
			b.WriteString("[")
			if len(class) > 0 && class[0] == '!' {
				b.WriteString("^")
				class = class[1:]
			} else if len(class) > 0 && class[0] == '^' {
				b.WriteString(`\^`)
				class = class[1:]
			}
			for _, r := range class {
				switch r {
				case '\\', '[', ']':
					b.WriteRune('\\')
				}
				b.WriteRune(r)
			}
			b.WriteString("]")
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(")$")
	return regexp.Compile(b.String())
}
