package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/sim"
)

func imageSize(e *Env) (int64, string) {
	s := envStr("BENCH_IMAGE_SIZE", e.Prof.ImageSize)
	mult := int64(1)
	num := s
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}} {
		if strings.HasSuffix(s, u.suf) {
			num, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 1 << 30, "1GiB"
	}
	return n * mult, s
}

// deploy: svm_deploy against govc import.ova and vmware_deploy_ovf on the
// same image and lab, and the upload against a raw HTTPS PUT (curl -T)
// of the same disk bytes to an NFC lease URL of the same vCenter.
func deploy(ctx context.Context, e *Env) Section {
	size, label := imageSize(e)
	sec := Section{Title: "3. Deploy (" + label + " image)",
		Intro: "One host, the new SVM image the lab generated (disk payload " + label + "). Every run deploys a fresh VM " +
			"(powered off, no IP wait: govc import.ova and vmware_deploy_ovf do neither by default) and the VM is deleted, untimed, " +
			"before the next run. The raw PUT is `curl -T` of the image's disk file to the device URL of an import lease of the same " +
			"vCenter, the transfer without any vSphere logic around it. The three run in rounds, one run of each per round in a " +
			"rotating order after one untimed round, so the runs a ratio compares were made seconds apart under the same load; " +
			"cpu s is each process's user+system time, which the load of other work barely moves."}
	cfg := sim.Config{Hosts: 1, VMsPerHost: -1, ImageBytes: size, SSHPort: -1, VCenterListen: "127.0.0.1:443"}
	l, err := startLab(ctx, e, "deploy", cfg)
	on443 := err == nil
	if err != nil {
		sec.Notes = append(sec.Notes, "vCenter could not listen on 127.0.0.1:443 ("+oneLine(err.Error())+"); lab on a random port, so vmware_deploy_ovf (uploads only to 443) is not measured.")
		cfg.VCenterListen = ""
		if l, err = startLab(ctx, e, "deploy2", cfg); err != nil {
			return failedSection(sec.Title, err)
		}
	}
	defer l.close()
	v := l.Vars
	host := v.ESXiHosts[0]
	ova := v.NewImage.Path
	disk, diskBytes, err := extractDisk(ova, filepath.Join(e.Work, "deploy-disk"))
	if err != nil {
		return failedSection(sec.Title, err)
	}
	defer os.Remove(disk)
	mib := float64(diskBytes) / (1 << 20)

	const vmName = "bench-deploy"
	clean := func() error { return l.destroyVM(ctx, vmName) }
	cpu := func(se Series) Stat {
		var t []float64
		for _, s := range se.Samples {
			t = append(t, s.CPUSeconds)
		}
		return stat(t)
	}
	throughput := func(se Series) Stat {
		var t []float64
		for _, s := range se.Samples {
			t = append(t, mib/s.Seconds)
		}
		return stat(t)
	}

	// The same image without its manifest, deployed with image_trusted:
	// nothing to hash, so the row shows what verifying the disk costs.
	bare, err := withoutManifest(ova, filepath.Join(e.Work, "deploy-bare.ova"))
	if err != nil {
		return failedSection(sec.Title, err)
	}
	defer os.Remove(bare)
	svmDeploy := func(name, file, image string, trusted bool, mibs *[]float64) (*contender, error) {
		args := filepath.Join(e.Work, file)
		a := l.connArgs()
		for k, val := range map[string]any{"datacenter": v.Datacenter, "datastore": v.SharedDatastore, "esxi_hostname": host,
			"name": vmName, "image": image, "image_trusted": trusted, "power_on": false, "wait_for_ip": false} {
			a[k] = val
		}
		return &contender{name: name, cmd: Cmd{Argv: []string{filepath.Join(e.Root, "library", "svm_deploy"), args}, Env: connEnv},
			before: clean, after: func(s Sample) error {
				var res struct {
					Failed, Changed bool
					Msg             string
					Upload          struct {
						MiBPerS float64 `json:"mib_per_s"`
					} `json:"upload"`
				}
				if err := json.Unmarshal(s.Stdout, &res); err != nil || res.Failed || !res.Changed {
					return fmt.Errorf("svm_deploy did not deploy: %s %s", oneLine(res.Msg), tail(string(s.Stdout), 200))
				}
				*mibs = append(*mibs, res.Upload.MiBPerS)
				return nil
			}}, writeJSON(args, a)
	}
	var modMiBs, bareMiBs []float64
	ours, err := svmDeploy("svm_deploy (process)", "deploy-args.json", ova, false, &modMiBs)
	if err != nil {
		return failedSection(sec.Title, err)
	}
	unhashed, err := svmDeploy("svm_deploy, image without manifest (image_trusted, nothing hashed)", "deploy-bare-args.json", bare, true, &bareMiBs)
	if err != nil {
		return failedSection(sec.Title, err)
	}
	govc := &contender{name: "govc import.ova", cmd: Cmd{Argv: []string{e.Govc, "import.ova", "-name", vmName, "-ds", v.SharedDatastore,
		"-dc", v.Datacenter, "-pool", "/" + v.Datacenter + "/host/" + v.Cluster + "/Resources",
		"-host", "/" + v.Datacenter + "/host/" + v.Cluster + "/" + host, ova}, Env: l.govcEnv()}, before: clean}
	cs := []*contender{ours, govc, unhashed}
	put := &contender{name: "raw HTTPS PUT (curl -T) to the NFC URL"}
	var perr error
	put.cmd, put.cleanup, perr = rawPutCmd(ctx, l, ova, disk)
	if perr == nil {
		cs = append(cs, put)
	}
	for _, c := range cs {
		withLabCPU(c)
	}
	// Round robin, one run of each per round, the order rotating: the
	// machine's load changes over seconds, and each ratio below compares
	// runs made side by side, not one command's block with another's.
	interleave(ctx, e.Runs, cs)
	if put.cleanup != nil {
		put.cleanup()
	}
	err = ours.err
	if err != nil {
		sec.Notes = append(sec.Notes, "svm_deploy not measured: "+oneLine(err.Error()))
	} else {
		sec.Rows = append(sec.Rows, Row{Series: ours.series, Extra: map[string]Stat{"mib_per_s": throughput(ours.series), "module_reported_mib_per_s": stat(modMiBs), "cpu_s": cpu(ours.series)}})
	}
	gerr := govc.err
	if gerr != nil {
		sec.Notes = append(sec.Notes, "govc import.ova not measured: "+oneLine(gerr.Error()))
	} else {
		sec.Rows = append(sec.Rows, Row{Series: govc.series, Extra: map[string]Stat{"mib_per_s": throughput(govc.series), "cpu_s": cpu(govc.series)}})
	}
	if unhashed.err != nil {
		sec.Notes = append(sec.Notes, "svm_deploy without manifest not measured: "+oneLine(unhashed.err.Error()))
	} else {
		sec.Rows = append(sec.Rows, Row{Series: unhashed.series, Extra: map[string]Stat{"mib_per_s": throughput(unhashed.series), "module_reported_mib_per_s": stat(bareMiBs), "cpu_s": cpu(unhashed.series)}})
	}
	if perr == nil {
		perr = put.err
	}
	if perr != nil {
		sec.Notes = append(sec.Notes, "raw PUT not measured: "+oneLine(perr.Error()))
	} else {
		sec.Rows = append(sec.Rows, Row{Series: put.series, Extra: map[string]Stat{"mib_per_s": throughput(put.series), "cpu_s": cpu(put.series)}})
	}

	var py Series
	pyEnumFail := 0
	pyErr := fmt.Errorf("needs vCenter on 127.0.0.1:443")
	if on443 && e.PyPath != "" {
		py, pyErr = measure(ctx, "ansible -m community.vmware.vmware_deploy_ovf", Cmd{Argv: []string{"ansible", "localhost", "-m",
			"community.vmware.vmware_deploy_ovf", "-a", fmt.Sprintf("datacenter=%s datastore=%s esxi_hostname=%s name=%s ovf=%s power_on=false wait=true",
				v.Datacenter, v.SharedDatastore, host, vmName, ova)}, Env: l.vmwareEnv(e.PyPath), Dir: e.Root, OKRCs: []int{0, 2}},
			e.Runs, 0, 120e9, clean, func(s Sample) error {
				// After the import the module reads the new VM's summary
				// (gather_vm_facts), where pyVmomi 8 trips over the
				// simulator's empty runtime.faultToleranceState. That
				// failure alone, with the VM deployed, counts as a deploy.
				out := string(s.Stdout)
				if strings.Contains(out, "SUCCESS") || strings.Contains(out, "CHANGED") {
					return nil
				}
				if !strings.Contains(out, "FaultToleranceState' has no attribute ''") {
					return fmt.Errorf("vmware_deploy_ovf failed: %s", headTail(out))
				}
				if n, err := l.countVMs(ctx, vmName); err != nil || n != 1 {
					return fmt.Errorf("vmware_deploy_ovf failed and left %d VMs named %s (%v)", n, vmName, err)
				}
				pyEnumFail++
				return nil
			})
	} else if e.PyPath == "" {
		pyErr = fmt.Errorf("pyVmomi 8 is not installed in bench/.py")
	}
	if pyErr != nil {
		sec.Notes = append(sec.Notes, "vmware_deploy_ovf not measured: "+oneLine(pyErr.Error()))
	} else {
		sec.Rows = append(sec.Rows, Row{Series: py, Extra: map[string]Stat{"mib_per_s": throughput(py)}})
		sec.Notes = append(sec.Notes, "vmware_deploy_ovf's time includes the ansible controller (about the ad-hoc ping time of section 1).")
		if pyEnumFail > 0 {
			sec.Notes = append(sec.Notes, fmt.Sprintf("vmware_deploy_ovf: %d of %d runs deployed the VM (upload and lease completed, VM present) "+
				"and then failed in gather_vm_facts: pyVmomi 8 cannot deserialize the simulator's empty runtime.faultToleranceState. "+
				"Those runs are counted; their time lacks only that final facts read.", pyEnumFail, py.Time.N))
		}
	}
	_ = clean()

	if err == nil && gerr == nil {
		r := ours.series.Time.Median / govc.series.Time.Median
		sec.Goals = append(sec.Goals, Goal{Figure: "svm_deploy / govc import.ova (time)", Value: r, Unit: "x", Target: "<= 1.0", Met: boolp(r <= 1.0)})
		sec.Notes = append(sec.Notes, "svm_deploy / govc import.ova, run by run (each round's pair side by side): "+spread(paired(ours.series, govc.series, func(i int) float64 {
			return ours.series.Samples[i].Seconds / govc.series.Samples[i].Seconds
		}), "x"))
		if unhashed.err == nil {
			sec.Notes = append(sec.Notes, "svm_deploy without manifest / govc import.ova, run by run (what the module costs without the disk's hash, which govc does not do by default): "+
				spread(paired(unhashed.series, govc.series, func(i int) float64 {
					return unhashed.series.Samples[i].Seconds / govc.series.Samples[i].Seconds
				}), "x"))
		}
	}
	if err == nil {
		sec.Goals = append(sec.Goals, Goal{Figure: "svm_deploy peak RSS", Value: ours.series.RSSMiB.Max, Unit: "MiB (max of runs)", Target: "< 64", Met: boolp(ours.series.RSSMiB.Max < 64)})
	}
	if err == nil && perr == nil {
		// The goal is about the upload: the module's own measure of its
		// transfer (first byte to lease complete) against curl's whole
		// PUT. The whole run, with login, lookups and the import spec
		// around the upload, is reported beside it.
		r := stat(modMiBs).Median / throughput(put.series).Median
		sec.Goals = append(sec.Goals, Goal{Figure: "svm_deploy upload throughput / raw PUT", Value: r * 100, Unit: "%", Target: ">= 90", Met: boolp(r >= 0.9)})
		sec.Notes = append(sec.Notes, "svm_deploy upload / raw PUT, run by run: "+spread(paired(ours.series, put.series, func(i int) float64 {
			return modMiBs[i] / (mib / put.series.Samples[i].Seconds) * 100
		}), "%"))
		r = throughput(ours.series).Median / throughput(put.series).Median
		sec.Goals = append(sec.Goals, Goal{Figure: "svm_deploy whole-run throughput / raw PUT", Value: r * 100, Unit: "%", Target: "reported (login, lookups and import spec included)"})
	}
	if note := cpuFloor(cs); note != "" {
		sec.Notes = append(sec.Notes, note)
	}
	if err == nil && pyErr == nil {
		r := py.Time.Median / ours.series.Time.Median
		sec.Goals = append(sec.Goals, Goal{Figure: "vmware_deploy_ovf (via ansible) / svm_deploy", Value: r, Unit: "x", Target: ">= 6", Met: boolp(r >= 6)})
	}
	return sec
}

// extractDisk copies the OVA's disk file (the largest member) to path.
func extractDisk(ova, path string) (string, int64, error) {
	f, err := os.Open(ova)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return "", 0, fmt.Errorf("read %s: no disk: %w", ova, err)
		}
		if !strings.HasSuffix(h.Name, ".vmdk") {
			continue
		}
		out, err := os.Create(path)
		if err != nil {
			return "", 0, err
		}
		n, err := io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return path, n, err
	}
}

// withoutManifest copies the OVA to path without its .mf.
func withoutManifest(ova, path string) (string, error) {
	in, err := os.Open(ova)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if strings.HasSuffix(h.Name, ".mf") {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return "", err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return path, out.Close()
}

// ovfDescriptor returns the .ovf member of the OVA.
func ovfDescriptor(ova string) (string, error) {
	f, err := os.Open(ova)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return "", fmt.Errorf("read %s: no descriptor: %w", ova, err)
		}
		if strings.HasSuffix(h.Name, ".ovf") {
			b, err := io.ReadAll(tr)
			return string(b), err
		}
	}
}

// rawPutCmd opens one import lease on the lab's vCenter and returns the
// curl -T of the disk to its device URL; cleanup aborts the lease and
// deletes its VM.
func rawPutCmd(ctx context.Context, l *lab, ova, disk string) (Cmd, func(), error) {
	const name = "bench-rawput"
	desc, err := ovfDescriptor(ova)
	if err != nil {
		return Cmd{}, nil, err
	}
	fd := find.NewFinder(l.c.Client, true)
	dc, err := fd.Datacenter(ctx, l.Vars.Datacenter)
	if err != nil {
		return Cmd{}, nil, err
	}
	fd.SetDatacenter(dc)
	pool, err := fd.ResourcePool(ctx, "/"+l.Vars.Datacenter+"/host/"+l.Vars.Cluster+"/Resources")
	if err != nil {
		return Cmd{}, nil, err
	}
	ds, err := fd.Datastore(ctx, l.Vars.SharedDatastore)
	if err != nil {
		return Cmd{}, nil, err
	}
	host, err := fd.HostSystem(ctx, l.Vars.ESXiHosts[0])
	if err != nil {
		return Cmd{}, nil, err
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return Cmd{}, nil, err
	}
	hr := host.Reference()
	isr, err := ovf.NewManager(l.c.Client).CreateImportSpec(ctx, desc, pool, ds,
		&types.OvfCreateImportSpecParams{EntityName: name, HostSystem: &hr, DiskProvisioning: "thin"})
	if err != nil {
		return Cmd{}, nil, fmt.Errorf("create import spec: %w", err)
	}
	lease, err := pool.ImportVApp(ctx, isr.ImportSpec, folders.VmFolder, host)
	if err != nil {
		return Cmd{}, nil, fmt.Errorf("import vapp: %w", err)
	}
	cleanup := func() {
		_ = lease.Abort(context.Background(), nil) // the lease only served the PUT
		_ = l.destroyVM(context.Background(), name)
	}
	info, err := lease.Wait(ctx, isr.FileItem)
	if err == nil && len(info.Items) == 0 {
		err = fmt.Errorf("lease has no device URL")
	}
	if err != nil {
		cleanup()
		return Cmd{}, nil, fmt.Errorf("wait for lease: %w", err)
	}
	u := info.Items[0].URL.String()
	return Cmd{Argv: []string{"curl", "-sS", "-f", "--cacert", l.Vars.VCenterCAFile,
		"-H", "Content-Type: application/x-vnd.vmware-streamVmdk", "-T", disk, "-o", "/dev/null", u}}, cleanup, nil
}

// contender is one command of an interleaved comparison.
type contender struct {
	name    string
	cmd     Cmd
	before  func() error
	after   func(Sample) error
	cleanup func()
	series  Series
	err     error
	labCPU  []float64 // CPU-seconds the lab (this process) spent during each timed run
}

// withLabCPU records, around each timed run of c, the CPU time of this
// process: the lab's vCenter runs in it, so that is what the run cost the
// server side (decrypting and hashing every uploaded byte), on the same
// cores as the command.
func withLabCPU(c *contender) {
	before, after := c.before, c.after
	var start float64
	c.before = func() error {
		if before != nil {
			if err := before(); err != nil {
				return err
			}
		}
		start = selfCPU()
		return nil
	}
	c.after = func(s Sample) error {
		c.labCPU = append(c.labCPU, selfCPU()-start)
		if after != nil {
			return after(s)
		}
		return nil
	}
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// cpuFloor says what the CPU times allow: with the lab's vCenter on the
// same cores, no run can take less than the client's and the vCenter's
// CPU time over the cores, whatever runs beside what.
func cpuFloor(cs []*contender) string {
	var parts []string
	for _, c := range cs {
		if c.err != nil || len(c.labCPU) == 0 {
			continue
		}
		var own []float64
		for _, s := range c.series.Samples {
			own = append(own, s.CPUSeconds)
		}
		client, lab := stat(own).Median, stat(c.labCPU).Median
		parts = append(parts, fmt.Sprintf("%s %.2f + %.2f = %.2f CPU-s, at least %.3f s", c.name, client, lab, client+lab, (client+lab)/float64(runtime.NumCPU())))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("CPU per run, the command's own + the lab's vCenter's (in the runner's process; its NFC handler decrypts and SHA-1s every byte), and the wall-clock floor on this machine's %d cores: %s.",
		runtime.NumCPU(), strings.Join(parts, "; "))
}

// interleave runs one untimed warm-up round, then runs rounds of every
// contender once, rotating the order each round, so that the runs a ratio
// compares were made seconds apart under the same load. A contender that
// fails stops being run; its error is kept.
func interleave(ctx context.Context, runs int, cs []*contender) {
	for i := -1; i < runs; i++ {
		for j := range cs {
			c := cs[(max(i, 0)+j)%len(cs)]
			if c.err != nil {
				continue
			}
			if i < 0 { // warm-up: the page cache, the first session
				if _, err := measure(ctx, c.name+" (warm-up)", c.cmd, 1, 0, 0, c.before, nil); err != nil {
					c.err = err
				}
				continue
			}
			se, err := measure(ctx, c.name, c.cmd, 1, 0, 0, c.before, c.after)
			if err != nil {
				c.err = err
				continue
			}
			c.series.Samples = append(c.series.Samples, se.Samples...)
			logf("  round %d: %s: %.3f s wall, %.3f s cpu", i+1, c.name, se.Samples[0].Seconds, se.Samples[0].CPUSeconds)
		}
	}
	for _, c := range cs {
		c.series.Name = c.name
		var secs, rss []float64
		for _, s := range c.series.Samples {
			secs, rss = append(secs, s.Seconds), append(rss, float64(s.RSSKiB)/1024)
		}
		c.series.Time, c.series.RSSMiB = stat(secs), stat(rss)
	}
}

// paired is f of each round both a and b ran in, in order.
func paired(a, b Series, f func(i int) float64) []float64 {
	out := make([]float64, 0, len(a.Samples))
	for i := range min(len(a.Samples), len(b.Samples)) {
		out = append(out, f(i))
	}
	return out
}

func spread(v []float64, unit string) string {
	st := stat(v)
	return fmt.Sprintf("median %.2f%s (%.2f–%.2f over %d rounds)", st.Median, unit, st.Min, st.Max, st.N)
}
