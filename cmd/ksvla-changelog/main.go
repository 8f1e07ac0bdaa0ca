// Command ksvla-changelog keeps the collection's changelog in the
// antsibull-changelog layout:
//
//	ksvla-changelog lint                    check changelogs/ (fragments' sections and types)
//	ksvla-changelog render                  write CHANGELOG.rst from changelogs/changelog.yaml
//	ksvla-changelog release VERSION [DATE]  fold the fragments into a release, then render
//
// It runs from the repository root (`make changelog`).
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/ksvla/lightagent/internal/changelog"
)

const (
	dir    = "changelogs"
	output = "CHANGELOG.rst"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ksvla-changelog:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: ksvla-changelog lint | render | release VERSION [DATE]")
	}
	l, err := changelog.Load(dir)
	if err != nil {
		return err
	}
	switch args[0] {
	case "lint":
		return nil
	case "render":
	case "release":
		if len(args) < 2 {
			return fmt.Errorf("usage: ksvla-changelog release VERSION [DATE]")
		}
		date := time.Now().UTC().Format("2006-01-02")
		if len(args) > 2 {
			date = args[2]
		}
		if err := l.Release(args[1], date, nil); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
	return os.WriteFile(output, []byte(l.Render()), 0o644)
}
