// Command ksvla is the collection's one multi-call binary: every module in
// library/ and plugins/modules/ is a link to it, and it picks the module
// from _ansible_module_name or the name it was called by. One binary keeps
// the collection under Galaxy's 20 MB limit.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/modules"
	agentfacts "github.com/ksvla/lightagent/modules/agent_facts"
)

// version is set at build time from galaxy.yml (-ldflags -X main.version=).
var version = "dev"

func main() {
	// Called by its own name: bin/ksvla, or binaries/ksvla_<os>_<arch> in the collection.
	if base := filepath.Base(os.Args[0]); (base == "ksvla" || strings.HasPrefix(base, "ksvla_")) && len(os.Args) > 1 {
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
		// The registry, for the Makefile (links in library/) and the tests.
		for _, n := range modules.Registry().Names() {
			fmt.Println(modules.Collection + "." + n)
		}
		return 0, true
	case "--list", "--host":
		// Ansible's inventory-script protocol: the hypervisors as inventory hosts.
		return inventory(args), true
	case "platform":
		// The suffix of this binary's name in the collection: binaries/ksvla_<os>_<arch>.
		fmt.Println(runtime.GOOS + "_" + runtime.GOARCH)
		return 0, true
	case "stubs":
		return write(args[1:], 1, 1, "stubs <dir>", func(p []string) error { return writeStubs(p[0]) }), true
	case "docs":
		return write(args[1:], 1, 2, "docs <sidecar dir> [<markdown dir>]", func(p []string) error { return writeDocs(p...) }), true
	case "runtime":
		return write(args[1:], 1, 1, "runtime <meta/runtime.yml>", func(p []string) error { return writeRuntime(p[0]) }), true
	}
	return 0, false
}

// write runs a command that writes generated files: 2 with its usage when
// it got too few or too many paths, 1 when writing failed.
func write(paths []string, least, most int, usage string, f func([]string) error) int {
	if len(paths) < least || len(paths) > most {
		fmt.Fprintln(os.Stderr, "usage: ksvla "+usage)
		return 2
	}
	if err := f(paths); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func writeDocs(paths ...string) error {
	dir := paths[0]
	if len(paths) == 2 {
		pages := modules.ModulePages()
		for name, page := range pages {
			if err := os.WriteFile(filepath.Join(paths[1], name), []byte(page), 0o644); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		}
		// The page of a module no longer registered goes with it.
		old, err := filepath.Glob(filepath.Join(paths[1], "*.md"))
		if err != nil {
			return err
		}
		for _, f := range old {
			if _, ok := pages[filepath.Base(f)]; !ok {
				if err := os.Remove(f); err != nil {
					return err
				}
			}
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

// writeRuntime regenerates the plugin_routing section of meta/runtime.yml
// from the registry.
func writeRuntime(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, modules.Runtime(b), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
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

func inventory(args []string) int {
	if args[0] == "--host" && len(args) != 2 || args[0] == "--list" && len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: ksvla --list | ksvla --host <hypervisor>")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	inv, err := agentfacts.Inventory(ctx, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var out any = inv
	if args[0] == "--host" {
		out = map[string]any{}
		if v, ok := inv["_meta"].(map[string]any)["hostvars"].(map[string]any)[args[1]]; ok {
			out = v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(string(b))
	return 0
}
