package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where the figures were measured.
type Machine struct {
	CPU         string `json:"cpu"`
	Cores       int    `json:"cores"`
	RAMMiB      int64  `json:"ram_mib"`
	Kernel      string `json:"kernel"`
	OS          string `json:"os"`
	Go          string `json:"go"`
	AnsibleCore string `json:"ansible_core"`
	Python      string `json:"python"`
	Govc        string `json:"govc"`
	PyVmomi     string `json:"pyvmomi"`
	CommVMware  string `json:"community_vmware"`
}

func machine(ctx context.Context) Machine {
	m := Machine{Cores: runtime.NumCPU()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kib, _ := strconv.ParseInt(f[1], 10, 64)
				m.RAMMiB = kib / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	first := func(argv ...string) string {
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return "not available"
		}
		l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return l
	}
	m.Go = first("go", "version")
	m.AnsibleCore = first("ansible", "--version")
	m.Python = first("/usr/bin/python3", "--version")
	return m
}

func (m *Machine) tools(e *Env) {
	m.Govc = "not installed"
	// A `go install`ed govc reports "0.0.0" (no release ldflags): read
	// the module version from the binary's build info instead.
	if out, err := exec.Command("go", "version", "-m", e.Govc).CombinedOutput(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == "mod" && f[1] == "github.com/vmware/govmomi" {
				m.Govc = f[2]
			}
		}
	}
	m.PyVmomi = "not installed"
	if e.PyPath != "" {
		cmd := exec.Command("/usr/bin/python3", "-c", "import pyVmomi, importlib.metadata as m; print(m.version('pyvmomi'))")
		cmd.Env = append(os.Environ(), "PYTHONPATH="+e.PyPath)
		if out, err := cmd.CombinedOutput(); err == nil {
			m.PyVmomi = strings.TrimSpace(string(out))
		}
	}
	m.CommVMware = "not installed"
	if b, err := os.ReadFile("/usr/lib/python3/dist-packages/ansible_collections/community/vmware/MANIFEST.json"); err == nil {
		var man struct {
			CollectionInfo struct {
				Version string `json:"version"`
			} `json:"collection_info"`
		}
		if json.Unmarshal(b, &man) == nil {
			m.CommVMware = man.CollectionInfo.Version
		}
	}
}
