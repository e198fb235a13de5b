package inventory

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxRangeHosts bounds what one host pattern may expand to, so a typo such
// as ks[1:1000000000] fails instead of exhausting memory.
const maxRangeHosts = MaxHosts

// MaxHosts bounds the hosts of an inventory, ranges expanded.
const MaxHosts = 100000

// expandHostRange expands every [start:end] or [start:end:step] range in a
// host name, left to right: numeric ranges keep the zero padding of start
// (ks[01:20]), alphabetic ranges run over single letters of one case ([a:f]).
func expandHostRange(name string) ([]string, error) {
	open := strings.IndexByte(name, '[')
	if open < 0 {
		if strings.IndexByte(name, ']') >= 0 {
			return nil, errors.New("] without [")
		}
		return []string{name}, nil
	}
	closing := strings.IndexByte(name[open:], ']')
	if closing < 0 {
		return nil, errors.New("[ without ]")
	}
	closing += open
	prefix, spec, suffix := name[:open], name[open+1:closing], name[closing+1:]
	if strings.IndexByte(prefix, ']') >= 0 {
		return nil, errors.New("] without [")
	}
	values, err := rangeValues(spec)
	if err != nil {
		return nil, fmt.Errorf("range [%s]: %w", spec, err)
	}
	tails, err := expandHostRange(suffix)
	if err != nil {
		return nil, err
	}
	if len(values)*len(tails) > maxRangeHosts {
		return nil, fmt.Errorf("expands to more than %d hosts", maxRangeHosts)
	}
	names := make([]string, 0, len(values)*len(tails))
	for _, v := range values {
		for _, t := range tails {
			names = append(names, prefix+v+t)
		}
	}
	return names, nil
}

// rangeValues lists the values of one range spec "start:end[:step]".
func rangeValues(spec string) ([]string, error) {
	parts := strings.Split(spec, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return nil, errors.New("want [start:end] or [start:end:step]")
	}
	start, end := parts[0], parts[1]
	if start == "" {
		start = "0" // Ansible's [:5] starts at 0
	}
	if end == "" {
		return nil, errors.New("missing end")
	}
	step := 1
	if len(parts) == 3 {
		var err error
		step, err = strconv.Atoi(parts[2])
		if err != nil || step < 1 {
			return nil, fmt.Errorf("step %q is not a positive integer", parts[2])
		}
	}
	switch {
	case isDigits(start) && isDigits(end):
		return numericRange(start, end, step)
	case isLetter(start) && isLetter(end):
		if isLower(start[0]) != isLower(end[0]) {
			return nil, fmt.Errorf("%s and %s are letters of different case", start, end)
		}
		if start > end {
			return nil, fmt.Errorf("start %s is after end %s", start, end)
		}
		var values []string
		for c := start[0]; c <= end[0]; c += byte(step) {
			values = append(values, string(c))
			if int(c)+step > 'z' {
				break
			}
		}
		return values, nil
	}
	return nil, fmt.Errorf("want two numbers or two letters, got %q and %q", start, end)
}

func numericRange(start, end string, step int) ([]string, error) {
	width := 0
	if len(start) > 1 && start[0] == '0' {
		width = len(start)
		if len(end) != width {
			return nil, fmt.Errorf("zero-padded start %s and end %s differ in width", start, end)
		}
	}
	from, errFrom := strconv.Atoi(start)
	to, errTo := strconv.Atoi(end)
	if errFrom != nil || errTo != nil {
		return nil, errors.New("number too large")
	}
	if from > to {
		return nil, fmt.Errorf("start %s is after end %s", start, end)
	}
	if (to-from)/step+1 > maxRangeHosts {
		return nil, fmt.Errorf("expands to more than %d hosts", maxRangeHosts)
	}
	var values []string
	for i := from; i <= to; i += step {
		values = append(values, fmt.Sprintf("%0*d", width, i))
	}
	return values, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isLetter(s string) bool {
	return len(s) == 1 && (isLower(s[0]) || (s[0] >= 'A' && s[0] <= 'Z'))
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
