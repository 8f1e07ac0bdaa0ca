// Command ksvla is the collection's one multi-call binary: every module in
// library/ and plugins/modules/ is a link to it, and it picks the module
// from _ansible_module_name or the name it was called by. One binary keeps
// the collection under Galaxy's 20 MB limit.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/modules"
)

// version is set at build time from galaxy.yml (-ldflags -X main.version=).
var version = "dev"

func main() {
	if filepath.Base(os.Args[0]) == "ksvla" && len(os.Args) > 1 {
		if code, handled := cli(os.Args[1:]); handled {
			os.Exit(code)
		}
	}
	os.Exit(ansible.Main(modules.Registry(), os.Args, os.Stdout))
}

// cli handles the commands of the binary called by its own name; anything
// else is an args file.
func cli(args []string) (int, bool) {
	switch args[0] {
	case "--version", "version":
		fmt.Println(version)
		return 0, true
	case "list":
		for _, n := range modules.Registry().Names() {
			fmt.Println(modules.Collection + "." + n)
		}
		return 0, true
	case "platform":
		// The suffix of this binary's name in the collection: binaries/ksvla_<os>_<arch>.
		fmt.Println(runtime.GOOS + "_" + runtime.GOARCH)
		return 0, true
	case "stubs":
		if len(args) != 2 {
			fmt.Fprintln(os.Stderr, "usage: ksvla stubs <dir>")
			return 2, true
		}
		if err := writeStubs(args[1]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1, true
		}
		return 0, true
	case "docs":
		if len(args) < 2 || len(args) > 3 {
			fmt.Fprintln(os.Stderr, "usage: ksvla docs <dir> [README.md]")
			return 2, true
		}
		if err := writeDocs(args[1:]...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func writeDocs(paths ...string) error {
	dir := paths[0]
	if len(paths) == 2 {
		old, err := os.ReadFile(paths[1])
		if err != nil {
			return err
		}
		updated, err := modules.UpdateReadme(string(old))
		if err != nil {
			return err
		}
		if err := os.WriteFile(paths[1], []byte(updated), 0o644); err != nil {
			return err
		}
	}
	for _, e := range modules.Registry() {
		b, err := modules.Sidecar(e)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name+".yml"), b, 0o644); err != nil {
			return fmt.Errorf("write docs of %s: %w", e.Name, err)
		}
	}
	return nil
}

// writeStubs writes the collection's plugins/modules/<module>.py: the
// documentation ansible-doc reads, the binary being run by the action plugin.
func writeStubs(dir string) error {
	for _, e := range modules.Registry() {
		b, err := modules.Stub(e)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name+".py"), b, 0o644); err != nil {
			return fmt.Errorf("write docs stub of %s: %w", e.Name, err)
		}
	}
	return nil
}
