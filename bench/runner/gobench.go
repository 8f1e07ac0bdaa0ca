package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// GoBench is one testing.B benchmark over -count runs: each metric
// (ns/op, B/op, allocs/op, custom ones) as median/min/max.
type GoBench struct {
	Package string          `json:"package"`
	Name    string          `json:"name"`
	Metrics map[string]Stat `json:"metrics"`
}

var benchFunc = regexp.MustCompile(`(?m)^func Benchmark\w+\(b \*testing\.B\)`)

// benchPackages are the packages under internal/ and modules/ whose
// tests declare a Benchmark function.
func benchPackages(root string) []string {
	set := map[string]bool{}
	for _, top := range []string{"internal", "modules"} {
		_ = filepath.WalkDir(filepath.Join(root, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, "_test.go") {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && benchFunc.Match(b) {
				rel, _ := filepath.Rel(root, filepath.Dir(p))
				set["./"+rel] = true
			}
			return nil
		})
	}
	var out []string
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func goBench(ctx context.Context, e *Env) ([]GoBench, string) {
	pkgs := benchPackages(e.Root)
	if len(pkgs) == 0 {
		return nil, "no Benchmark functions found under internal/ and modules/"
	}
	count := envInt("BENCH_GO_COUNT", 5)
	var all []GoBench
	var notes []string
	for _, p := range pkgs {
		args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", strconv.Itoa(count), "-timeout", "10m", p}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = e.Root
		var out bytes.Buffer
		var errOut bytes.Buffer
		// Logs of the code under test go to stderr; kept apart, they
		// cannot split a result line.
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		got := parseBench(p, out.String())
		logf("  go test -bench . %s: %d benchmarks", p, len(got))
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: go test failed: %s", p, oneLine(tail(out.String()+errOut.String(), 300))))
		}
		all = append(all, got...)
	}
	return all, strings.Join(notes, " ")
}

// parseBench reads `go test -bench` output: name, iterations, then value
// unit pairs.
func parseBench(pkg, out string) []GoBench {
	byName := map[string]map[string][]float64{}
	var order []string
	pending := "" // a name whose numbers a log line pushed to the next line
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && strings.HasPrefix(f[0], "Benchmark") {
			pending = f[0]
			if len(f) < 4 {
				continue
			}
		} else if pending != "" && len(f) >= 3 {
			f = append([]string{pending}, f...)
		} else {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		pending = ""
		name := f[0]
		if byName[name] == nil {
			byName[name] = map[string][]float64{}
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			byName[name][f[i+1]] = append(byName[name][f[i+1]], v)
		}
	}
	var res []GoBench
	for _, n := range order {
		g := GoBench{Package: pkg, Name: n, Metrics: map[string]Stat{}}
		for unit, vals := range byName[n] {
			g.Metrics[unit] = stat(vals)
		}
		res = append(res, g)
	}
	return res
}
