package yamlx

import (
	"fmt"
	"strings"
)

// Suggest returns the candidate closest to name when it is close enough to
// be a likely typo, or "". Ties go to the earliest candidate.
func Suggest(name string, candidates []string) string {
	best, bestDist := "", -1
	limit := 1
	if len(name) >= 5 {
		limit = 2
	}
	if len(name) >= 9 {
		limit = 3
	}
	lower := strings.ToLower(name)
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := distance(lower, strings.ToLower(c))
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// UnknownKey is the message for a key that is not one of known:
// `unknown key "regster" (did you mean register?)`.
func UnknownKey(key string, known []string) string {
	return WithSuggestion(fmt.Sprintf("unknown key %q", key), key, known)
}

// WithSuggestion appends "(did you mean X?)" to msg when name looks like a
// typo of one of candidates.
func WithSuggestion(msg, name string, candidates []string) string {
	if s := Suggest(name, candidates); s != "" {
		return fmt.Sprintf("%s (did you mean %s?)", msg, s)
	}
	return msg
}

// distance is the Damerau-Levenshtein distance (with adjacent
// transpositions), counted in runes.
func distance(a, b string) int {
	s, t := []rune(a), []rune(b)
	rows := make([][]int, len(s)+1)
	for i := range rows {
		rows[i] = make([]int, len(t)+1)
		rows[i][0] = i
	}
	for j := range t {
		rows[0][j+1] = j + 1
	}
	for i := 1; i <= len(s); i++ {
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(s)][len(t)]
}
