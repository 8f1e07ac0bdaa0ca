// Command ksvla-lab runs the lab (vCenter, SVMs, KSC in one process) for
// demos, playbooks and benchmarks.
//
//	ksvla-lab up [-dir .lab] [-hosts 4] [-vms 3] [-old 6.1.0.100] [-new 6.2.0.200] [-ksc 15.1] [-unmarked]
//	             [-old-agent V1 -new-agent V2] [-compat table.yml] [-agent-keys KES,kesl] ...
//	ksvla-lab status [-dir .lab] [-json]
//	ksvla-lab down [-dir .lab]
//	ksvla-lab host [-dir .lab] fail|recover|maintenance|exit-maintenance <esxi host>
//
// `up` writes the lab files into -dir, plus lab.pid and lab.addr, and runs
// until SIGINT/SIGTERM or `down`. The running lab serves its fleet table
// at http://<lab.addr>/status (JSON) on a loopback port rather than a unix
// socket: socket paths are limited to about 100 bytes and -dir may be
// deep. The table holds no secrets.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ksvla/lightagent/internal/sim"
)

const usage = `usage: ksvla-lab up|status|down|host [flags]; ksvla-lab <command> -h lists the flags`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ksvla-lab:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "up":
		return up(ctx, args[1:], out)
	case "status":
		return status(ctx, args[1:], out)
	case "down":
		return down(ctx, args[1:], out)
	case "host":
		return hostCmd(ctx, args[1:], out)
	default:
		return fmt.Errorf("unknown command %q; %s", args[0], usage)
	}
}

func up(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	var cfg sim.Config
	var imageSize string
	fs.StringVar(&cfg.Dir, "dir", ".lab", "directory for vars.yml, certificates, known_hosts, images")
	fs.IntVar(&cfg.Hosts, "hosts", 4, "ESXi hosts")
	fs.IntVar(&cfg.VMsPerHost, "vms", 3, "protected VMs per host")
	fs.IntVar(&cfg.LoopbackNet, "loopback-net", 10, "second octet of the SVMs' 127.N.x.y addresses (one per lab running side by side)")
	fs.StringVar(&cfg.OldVersion, "old", "6.1.0.100", "Protection Server version of the seeded SVMs")
	fs.StringVar(&cfg.NewVersion, "new", "6.2.0.200", "Protection Server version of the new image")
	fs.StringVar(&cfg.OldAgentVersion, "old-agent", "", "Light Agent version on protected VMs, for every agent product (default: each product's own, 12.5.0.100 for Windows, 12.1.0.300 for Linux)")
	fs.StringVar(&cfg.NewAgentVersion, "new-agent", "", "Light Agent version after the update task, for every agent product (default: 12.6.0.200 for Windows, 12.2.0.400 for Linux)")
	var compatFile, agentKeys string
	fs.StringVar(&compatFile, "compat", "", "YAML or JSON file with the compatibility table (Protection Server version -> agent product key -> agent versions); default: each product's old version with -old, its new version with -new")
	fs.StringVar(&agentKeys, "agent-keys", "", "KSC product keys of the Windows and Linux agents, comma-separated (default KES,kesl)")
	fs.StringVar(&cfg.PSKey, "ps-key", sim.DefaultPSKey, "KSC product key of the Protection Server")
	fs.StringVar(&cfg.KSC, "ksc", sim.KSC151, "KSC behaviour: 15 or 15.1")
	fs.BoolVar(&cfg.Unmarked, "unmarked", false, "seed old SVMs without marks, as the vendor's wizard deploys them")
	fs.BoolVar(&cfg.SecondDatacenter, "second-datacenter", false, "seed a second datacenter (DC2) served by the same KSC, with a running old SVM the upgrade must leave alone")
	fs.BoolVar(&cfg.OnePassword, "one-password", false, "simplification: new SVMs accept the operator's klconfig password instead of the image's")
	fs.BoolVar(&cfg.KnownNewHostKeys, "known-new-host-keys", false, "simplification: write new SVMs' host keys into the lab's known_hosts")
	fs.StringVar(&cfg.VCenterListen, "vcenter", "127.0.0.1:0", "vCenter listen address (community.vmware uploads need :443)")
	fs.StringVar(&imageSize, "image-size", "1MiB", "disk payload of each generated OVA (B, KiB, MiB, GiB)")
	fs.DurationVar(&cfg.AgentUpdateDuration, "agent-update", 2*time.Second, "median time the Light Agent update takes on one host (hosts update side by side)")
	fs.Float64Var(&cfg.AgentUpdateSpread, "agent-update-spread", sim.DefaultAgentUpdateSpread, "sigma of the log-normal factor of each host's update time (1: a long tail of slow hosts; negative: every host the same)")
	fs.Int64Var(&cfg.AgentUpdateSeed, "agent-update-seed", 1, "seed of the update times: a host's time depends only on it and the host's name")
	fs.Func("agent-update-host", "HOST=DURATION: this host's update time instead of a drawn one (repeatable)", func(v string) error {
		host, d, ok := strings.Cut(v, "=")
		dur, err := time.ParseDuration(d)
		if !ok || host == "" || err != nil {
			return fmt.Errorf("want HOST=DURATION, e.g. esxi-01.lab.local=10m, got %q", v)
		}
		if cfg.AgentUpdateHosts == nil {
			cfg.AgentUpdateHosts = map[string]time.Duration{}
		}
		cfg.AgentUpdateHosts[host] = dur
		return nil
	})
	fs.Func("ksc-task-fails-on", "DEVICE=TEXT: every KSC task fails on this device (display name of a VM or SVM) with this text (repeatable)", func(v string) error {
		dev, text, ok := strings.Cut(v, "=")
		if !ok || dev == "" || text == "" {
			return fmt.Errorf("want DEVICE=TEXT, e.g. vm-esxi-01-001=Installation package not found, got %q", v)
		}
		if cfg.KSCFailTasksOn == nil {
			cfg.KSCFailTasksOn = map[string]string{}
		}
		cfg.KSCFailTasksOn[dev] = text
		return nil
	})
	fs.DurationVar(&cfg.NetworkRestartDelay, "network-restart", 2*time.Second, "SVM network restart delay")
	fs.IntVar(&cfg.SSHPort, "ssh-port", defaultSSHPort(), "SVM klconfig SSH port on each SVM's own loopback address (0 = 22, -1 = ephemeral); 2222 when not run as root")
	fs.DurationVar(&cfg.DRSInterval, "drs-interval", sim.DefaultDRSInterval, "how often fully automated DRS moves VMs that no DRS override holds (negative: never)")
	fs.BoolVar(&cfg.ProtectedVMsStay, "protected-vms-stay", false, "simplification: give the protected VMs DRS overrides that disable DRS for them, so each host keeps its agents (at a site DRS moves them)")
	fs.StringVar(&cfg.AgentSelection, "agent-selection", sim.SelectStandard, "how a Light Agent picks its SVM: standard (on its host, else the one with the fewest agents anywhere), hypervisor or cluster (the extended algorithm with that scope)")
	fs.BoolVar(&cfg.NoHA, "no-ha", false, "run the cluster without vSphere HA (hosts power VMs on through autostart)")
	fs.BoolVar(&cfg.NoMaintenanceAutostart, "no-maintenance-autostart", false, "leaving maintenance mode powers nothing on, even outside HA (VMware KB 326330)")
	fs.BoolVar(&cfg.UnpinnedSeed, "unpinned-seed", false, "seed old SVMs without the DRS and HA overrides the vendor's wizard gives them")
	fs.Int64Var(&cfg.Capacity.MemoryMB, "host-memory", 262144, "memory of each host, MB")
	fs.IntVar(&cfg.Capacity.CPUs, "host-cpus", 32, "logical processors of each host")
	fs.Int64Var(&cfg.Capacity.LocalDatastoreGB, "local-datastore", 1024, "size of each host's local datastore, GB")
	fs.StringVar(&cfg.SmallHost, "small-host", "", "a host with memory only for what it runs plus 2 GiB: too small for a second SVM")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.KSC != sim.KSC15 && cfg.KSC != sim.KSC151 {
		return fmt.Errorf("-ksc %q: want %s or %s", cfg.KSC, sim.KSC15, sim.KSC151)
	}
	size, err := parseSize(imageSize)
	if err != nil {
		return fmt.Errorf("-image-size: %w", err)
	}
	cfg.ImageBytes = size
	if err := agentSettings(&cfg, compatFile, agentKeys); err != nil {
		return err
	}
	if pid, err := readPID(cfg.Dir); err == nil && alive(pid) {
		return fmt.Errorf("a lab is already running in %s (pid %d): ksvla-lab down -dir %s", cfg.Dir, pid, cfg.Dir)
	}

	start := time.Now()
	lab, err := sim.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer lab.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("serve lab status: %w", err)
	}
	srv := &http.Server{Handler: statusHandler(ctx, lab), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // returns ErrServerClosed at shutdown
	defer srv.Close()

	dir := lab.Dir()
	// lab.addr last: its presence tells `status` that the lab is up.
	for _, f := range [][2]string{{"lab.pid", strconv.Itoa(os.Getpid())}, {"lab.addr", ln.Addr().String()}} {
		name, content := f[0], f[1]
		// Atomic: `status` and `down` poll for these files.
		if err := sim.WriteAtomic(filepath.Join(dir, name), []byte(content+"\n"), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		defer os.Remove(filepath.Join(dir, name))
	}

	v := lab.Vars(dir)
	old, newImage := lab.Images()
	fmt.Fprintf(out, "lab up in %s (%s)\n", time.Since(start).Round(time.Millisecond), dir)
	fmt.Fprintf(out, "  vCenter   %s  thumbprint %s  user %s\n", lab.VCenter().URL(), v.VCenterThumbprint, v.VCenterUsername)
	fmt.Fprintf(out, "  KSC       %s  fingerprint %s  user %s\n", v.KSCURL, v.KSCFingerprint, v.KSCUsername)
	fmt.Fprintf(out, "  images    %s\n            %s\n", old.Path, newImage.Path)
	fmt.Fprintf(out, "  files     %s (passwords inside), known_hosts, vcenter.pem, ksc.pem\n", filepath.Join(dir, "vars.yml"))
	fmt.Fprintf(out, "  status    ksvla-lab status -dir %s   (http://%s/status)\n\n", cfg.Dir, ln.Addr())
	if err := lab.Status().Render(out); err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(out, "lab shutting down")
	return nil
}

func statusHandler(ctx context.Context, lab *sim.Lab) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(lab.StatusWithCounters()) // a client gone away is not the lab's problem
	})
	mux.HandleFunc("POST /hosts/{host}/{action}", func(w http.ResponseWriter, r *http.Request) {
		host := r.PathValue("host")
		var err error
		switch r.PathValue("action") {
		case "fail":
			err = lab.FailHost(ctx, host)
		case "recover":
			err = lab.RecoverHost(host)
		case "maintenance":
			err = lab.EnterMaintenance(ctx, host)
		case "exit-maintenance":
			err = lab.ExitMaintenance(ctx, host)
		default:
			http.Error(w, "unknown action "+r.PathValue("action")+"; want "+hostActions, http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
		}
	})
	return mux
}

const hostActions = "fail, recover, maintenance or exit-maintenance"

// hostCmd plays a host event in the running lab: a failure (HA restarts
// what it may elsewhere), a recovery, or maintenance mode in or out.
func hostCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("host", flag.ContinueOnError)
	dir := fs.String("dir", ".lab", "lab directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("usage: ksvla-lab host [-dir .lab] %s <esxi host>", strings.ReplaceAll(hostActions, ", ", "|"))
	}
	action, host := fs.Arg(0), fs.Arg(1)
	addr, err := os.ReadFile(filepath.Join(*dir, "lab.addr"))
	if err != nil {
		return fmt.Errorf("no running lab in %s: %w", *dir, err)
	}
	u := "http://" + strings.TrimSpace(string(addr)) + "/hosts/" + url.PathEscape(host) + "/" + url.PathEscape(action)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return fmt.Errorf("host %s %s: %w", action, host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096)) // the status says enough if the body is gone
		return fmt.Errorf("host %s %s: %s", action, host, strings.TrimSpace(string(msg)))
	}
	fmt.Fprintf(out, "%s: %s done\n", host, action)
	return nil
}

func status(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	dir := fs.String("dir", ".lab", "lab directory")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, err := os.ReadFile(filepath.Join(*dir, "lab.addr"))
	if err != nil {
		return fmt.Errorf("no running lab in %s: %w", *dir, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+strings.TrimSpace(string(addr))+"/status", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("read lab status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("read lab status: %s", resp.Status)
	}
	var st sim.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("read lab status: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return st.Render(out)
}

func down(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	dir := fs.String("dir", ".lab", "lab directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pid, err := readPID(*dir)
	if err != nil {
		return fmt.Errorf("no running lab in %s: %w", *dir, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop lab (pid %d): %w", pid, err)
	}
	for alive(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stop lab (pid %d): %w", pid, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "lab in %s stopped (pid %d)\n", *dir, pid)
	return nil
}

func readPID(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "lab.pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s", filepath.Join(dir, "lab.pid"))
	}
	return pid, nil
}

// alive reports whether pid exists and is not a zombie waiting for its
// parent (a zombie has exited: it only lacks a wait).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no procfs: trust kill(0)
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// agentSettings applies -compat and -agent-keys.
func agentSettings(cfg *sim.Config, compatFile, agentKeys string) error {
	if compatFile != "" {
		raw, err := os.ReadFile(compatFile)
		if err != nil {
			return fmt.Errorf("-compat: %w", err)
		}
		// JSON is YAML: one decoder reads both.
		if err := yaml.Unmarshal(raw, &cfg.Compatibility); err != nil {
			return fmt.Errorf("-compat %s: want Protection Server version -> agent product key -> list of agent versions: %w", compatFile, err)
		}
	}
	if agentKeys != "" {
		keys := strings.Split(agentKeys, ",")
		if len(keys) != len(sim.DefaultAgentProducts) {
			return fmt.Errorf("-agent-keys %q: want %d keys (Windows,Linux)", agentKeys, len(sim.DefaultAgentProducts))
		}
		cfg.AgentProducts = append([]sim.AgentProduct(nil), sim.DefaultAgentProducts...)
		for i, k := range keys {
			cfg.AgentProducts[i].Key = strings.TrimSpace(k)
		}
	}
	return nil
}

// parseSize reads sizes like 4096, 64KiB, 1MiB, 2GiB.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size like 4096, 64KiB, 1MiB or 2GiB", s)
	}
	return n * mult, nil
}

// defaultSSHPort is 22, as on a real SVM, when the lab may bind it, and
// 2222 otherwise: one port for every SVM, so playbooks need one setting.
func defaultSSHPort() int {
	if os.Geteuid() == 0 {
		return 0
	}
	return 2222
}
