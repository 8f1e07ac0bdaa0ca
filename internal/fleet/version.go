package fleet

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// versionSyntax is a version as an operator gives one: two to four dotted
// numbers. Compare would take anything, and a typo ("latest",
// "v6.2.0.200", a trailing space) would then match nothing and change
// nothing without a word.
var versionSyntax = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,9}){1,3}$`)

// CheckVersion checks a version where it enters, naming the option.
func CheckVersion(option, v string) error {
	if !versionSyntax.MatchString(v) {
		return fmt.Errorf("%s must be a version of two to four dotted numbers such as 6.2.0.200, got %q", option, v)
	}
	return nil
}

// Version is a dotted product version (6.2.0.200) compared numerically, so
// 6.10 sorts after 6.9. Non-numeric parts compare as text, after numbers.
type Version string

// Compare returns -1, 0 or +1. Missing parts count as 0 (6.2 == 6.2.0.0).
func (v Version) Compare(o Version) int {
	a, b := strings.Split(string(v), "."), strings.Split(string(o), ".")
	for i := 0; i < len(a) || i < len(b); i++ {
		x, y := part(a, i), part(b, i)
		xi, xerr := strconv.Atoi(x)
		yi, yerr := strconv.Atoi(y)
		switch {
		case xerr == nil && yerr == nil:
			if xi != yi {
				if xi < yi {
					return -1
				}
				return 1
			}
		case xerr == nil:
			return -1
		case yerr == nil:
			return 1
		default:
			if c := strings.Compare(x, y); c != 0 {
				return c
			}
		}
	}
	return 0
}

func part(p []string, i int) string {
	if i < len(p) && p[i] != "" {
		return p[i]
	}
	return "0"
}

// Line is the product line a version belongs to: its first two parts
// (6.2.0.200 -> 6.2).
func (v Version) Line() string {
	p := strings.SplitN(string(v), ".", 3)
	if len(p) < 2 {
		return string(v)
	}
	return p[0] + "." + p[1]
}
