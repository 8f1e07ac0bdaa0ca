package ansible

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	ctx, stop := signalContext()
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
	if err := RemoveArgsFile(argv[1], inv); err != nil {
		return fail("%v", err)
	}
	entry, ok := reg.Resolve(inv.ModuleName, argv[0])
	if !ok {
		return fail("unknown module %q (called as %s): known modules are %s",
			inv.ModuleName, filepath.Base(argv[0]), strings.Join(reg.Names(), ", "))
	}
	return Execute(ctx, entry.Name, entry.New(), inv, nil)
}

// signalContext is cancelled, with a *SignalError as its cause, on the
// first SIGTERM or SIGINT. A second signal is left to the default action
// (the process ends at once), so an operator can still force it.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			signal.Reset(syscall.SIGTERM, syscall.SIGINT)
			cancel(&SignalError{Signal: sig})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// RemoveArgsFile deletes the args file the controller wrote for this task
// as soon as it is read: it holds every password in clear text, and a run
// killed later (SIGKILL, a lost host) would otherwise leave it in the
// remote tmp dir. ansible-core removes that dir with "rm -f -r" after the
// run, which does not mind the file being gone. The file is kept when the
// user asked to keep remote files (ANSIBLE_KEEP_REMOTE_FILES, for
// debugging) and when it is not the controller's (a module run by hand
// with a file of one's own), told by its place: a file named "args" in
// the task's _ansible_tmpdir.
func RemoveArgsFile(path string, inv Invocation) error {
	if inv.KeepRemoteFiles || inv.TmpDir == "" || filepath.Base(path) != "args" {
		return nil
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil
	}
	tmp := inv.TmpDir
	if rest, ok := strings.CutPrefix(tmp, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil
		}
		tmp = filepath.Join(home, rest)
	}
	if filepath.Clean(tmp) != dir {
		return nil
	}
	err = os.Remove(path)
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		// A module run through become as another user may not delete a
		// file in the connection user's dir: ansible-core's cleanup does.
		return nil
	}
	return fmt.Errorf("remove args file (it holds the task's passwords): %v", err)
}
