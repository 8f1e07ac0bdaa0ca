package ansible

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Entry registers one module of the multi-call binary.
type Entry struct {
	Name string
	New  func() Module
}

// Registry is the explicit table of modules (no init() side effects).
type Registry []Entry

// Lookup finds a module by its short name.
func (r Registry) Lookup(name string) (Entry, bool) {
	for _, e := range r {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// Names lists the registered module names, sorted.
func (r Registry) Names() []string {
	out := make([]string, 0, len(r))
	for _, e := range r {
		out = append(out, e.Name)
	}
	sort.Strings(out)
	return out
}

// Resolve picks the module to run: the last dotted part of
// _ansible_module_name when it names a registered module (FQCN or short
// name), otherwise the base name of argv[0] without the AnsiballZ_ prefix
// (a link in library/, or a module renamed by an action plugin).
func (r Registry) Resolve(moduleName, argv0 string) (Entry, bool) {
	if moduleName != "" {
		short := moduleName[strings.LastIndex(moduleName, ".")+1:]
		if e, ok := r.Lookup(short); ok {
			return e, true
		}
	}
	base := strings.TrimPrefix(filepath.Base(argv0), "AnsiballZ_")
	base = strings.TrimSuffix(base, filepath.Ext(base))
	return r.Lookup(base)
}

// Main runs the module named by the invocation and prints its result. It
// returns the process exit status: 1 on failure, as AnsibleModule does
// (the controller reads "failed" from the JSON, not the status).
func Main(reg Registry, argv []string, stdout io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	res := run1(ctx, reg, argv)
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintf(stdout, `{"failed": true, "msg": "print result: %s"}`+"\n", strings.ReplaceAll(err.Error(), `"`, `'`))
		return 1
	}
	if res.Failed() {
		return 1
	}
	return 0
}

func run1(ctx context.Context, reg Registry, argv []string) Result {
	fail := func(format string, a ...any) Result {
		return Result{"failed": true, "changed": false, "msg": fmt.Sprintf(format, a...)}
	}
	if len(argv) < 2 {
		return fail("no args file given: usage: %s <args.json>", filepath.Base(argv[0]))
	}
	raw, err := os.ReadFile(argv[1])
	if err != nil {
		return fail("read args file: %v", err)
	}
	inv, err := ParseArgs(raw)
	if err != nil {
		return fail("read args file %s: %v", argv[1], err)
	}
	entry, ok := reg.Resolve(inv.ModuleName, argv[0])
	if !ok {
		return fail("unknown module %q (called as %s): known modules are %s",
			inv.ModuleName, filepath.Base(argv[0]), strings.Join(reg.Names(), ", "))
	}
	return Execute(ctx, entry.Name, entry.New(), inv, nil)
}
