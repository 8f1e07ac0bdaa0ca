package ansible

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// IntRange is an inclusive range for an int option.
type IntRange struct{ Min, Max int }

// Between returns the range min..max.
func Between(min, max int) *IntRange { return &IntRange{Min: min, Max: max} }

// Shared bounds, so every module words and enforces them alike.
var (
	// PortRange is a TCP port.
	PortRange = Between(1, 65535)
	// MaxSeconds bounds timeouts: a week is more than any step needs, and
	// larger values would overflow a time.Duration.
	MaxSeconds = 7 * 24 * 3600
	// SecondsRange is a positive timeout in seconds.
	SecondsRange = Between(1, MaxSeconds)
	// WaitRange is a wait in seconds that may be zero (do not wait).
	WaitRange = Between(0, MaxSeconds)
)

// Insecure is an option value that turns a verification off. The warning
// is given once per task when Option has Value, unless one of Unless is
// set (a pin makes the connection verified after all) or one of When is
// not (the connection is not used).
type Insecure struct {
	Option string
	Value  any
	Unless []string
	When   []string
	Msg    string
}

// validateBounds checks Range, MaxLen, MaxItems and Check on coerced values.
// A value that failed its type check keeps its raw form and is skipped: its
// type error is already reported.
func (v *validator) validateBounds(spec *Spec, params map[string]any, ctx []string) {
	for _, o := range spec.Options {
		value, ok := params[o.Name]
		if !ok || value == nil {
			continue
		}
		if msg := boundsError(o, value); msg != "" {
			v.fail(fmt.Sprintf("value of %s %s", o.Name, msg), ctx)
		}
	}
}

func boundsError(o Option, value any) string {
	switch t := value.(type) {
	case int:
		if r := o.Range; r != nil && (t < r.Min || t > r.Max) {
			return fmt.Sprintf("must be between %d and %d, got: %d", r.Min, r.Max, t)
		}
	case string:
		if n := utf8.RuneCountInString(t); o.MaxLen > 0 && n > o.MaxLen {
			return fmt.Sprintf("must be at most %d characters long, got %d", o.MaxLen, n)
		}
	case []any:
		if o.MaxItems > 0 && len(t) > o.MaxItems {
			return fmt.Sprintf("must have at most %d elements, got %d", o.MaxItems, len(t))
		}
	}
	if o.Check != nil {
		if err := o.Check(value); err != nil {
			return "is invalid: " + err.Error()
		}
	}
	return ""
}

// insecureWarnings warns about each verification the options turn off.
func (v *validator) insecureWarnings(spec *Spec, params map[string]any) {
	given := func(names []string) bool {
		for _, n := range names {
			if pyTruthy(params[n]) {
				return true
			}
		}
		return false
	}
	for _, in := range spec.Insecure {
		if params[in.Option] != normalize(in.Value) || given(in.Unless) || (len(in.When) > 0 && !given(in.When)) {
			continue
		}
		v.warnings = append(v.warnings, fmt.Sprintf("%s=%v: %s", in.Option, params[in.Option], in.Msg))
	}
}

// URLSecrets returns what must be masked in a URL's user information: the
// password as written and decoded, and the whole user:password part. It
// never parses strictly, so a URL that url.Parse refuses (a stray %, a
// quote) is covered too.
func URLSecrets(s string) []string {
	i := strings.Index(s, "://")
	if i < 0 {
		return nil
	}
	rest := s[i+3:]
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return nil
	}
	userinfo := rest[:at]
	_, pw, ok := strings.Cut(userinfo, ":")
	if !ok || pw == "" {
		return nil // a user name alone is no secret
	}
	out := []string{userinfo, pw}
	if dec, err := url.PathUnescape(pw); err == nil && dec != pw {
		out = append(out, dec)
	}
	return out
}

// VM names: vCenter takes up to 80 characters and escapes '%', '/' and
// '\' itself; control characters and bidirectional overrides make a name
// that displays as another one.
const MaxVMNameLen = 80

// CheckVMName is an Option.Check for a vSphere VM name.
func CheckVMName(value any) error {
	s, _ := value.(string)
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("a VM name must not be blank")
	}
	if n := utf8.RuneCountInString(s); n > MaxVMNameLen {
		return fmt.Errorf("a VM name has at most %d characters, got %d", MaxVMNameLen, n)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("a VM name must be valid UTF-8")
	}
	if s != strings.TrimSpace(s) {
		return fmt.Errorf("a VM name must not begin or end with white space")
	}
	for i, r := range s {
		switch {
		case unicode.IsControl(r):
			return fmt.Errorf("control character %U at byte %d", r, i)
		case unicode.Is(unicode.Bidi_Control, r), unicode.Is(unicode.Cf, r):
			return fmt.Errorf("invisible or bidirectional formatting character %U at byte %d", r, i)
		case strings.ContainsRune(`<>&"`, r):
			// vCenter stores them escaped (&lt; ...) and shows the escapes in
			// some clients, so the name would no longer match itself.
			return fmt.Errorf("character %q at byte %d is not allowed (no < > & \")", r, i)
		}
	}
	return nil
}

// CheckRegularFile is an Option.Check for a path option the module reads
// (a CA bundle, a key, known_hosts): a path that exists must be a regular
// file. Reading a FIFO or a device would block the run past its deadline,
// or never end; a missing file is left to the module, which may create it.
func CheckRegularFile(value any) error {
	p, _ := value.(string)
	if p == "" {
		return nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	return nil
}

// maxSecretFile bounds a file read by EnvFileFallback: a password or a key.
const maxSecretFile = 64 << 10

// fileFallback sets o from the first file an EnvFileFallback variable
// names. A variable set but empty is skipped (AWX renders an unused file
// injector as an empty path).
func (v *validator) fileFallback(o Option, params map[string]any) {
	for _, name := range o.EnvFileFallback {
		path, ok := v.opts.Getenv(name)
		if !ok || path == "" {
			continue
		}
		value, err := readSmallFile(path, maxSecretFile)
		if err != nil {
			v.errors = append(v.errors, fmt.Sprintf("value of %s: read the file named by %s: %v", o.Name, name, err))
			return
		}
		if o.NoLog {
			v.addNoLog(value)
		}
		params[o.Name] = value
		return
	}
}

// readSmallFile reads a regular file of at most max bytes without
// blocking on a FIFO, and drops one trailing line break.
func readSmallFile(path string, max int64) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > max {
		return "", fmt.Errorf("%s holds %d bytes, more than the %d allowed", path, st.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max))
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}
