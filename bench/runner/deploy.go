package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
			"vCenter, the transfer without any vSphere logic around it."}
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
	throughput := func(se Series) Stat {
		var t []float64
		for _, s := range se.Samples {
			t = append(t, mib/s.Seconds)
		}
		return stat(t)
	}

	args := filepath.Join(e.Work, "deploy-args.json")
	a := l.connArgs()
	for k, val := range map[string]any{"datacenter": v.Datacenter, "datastore": v.SharedDatastore, "esxi_hostname": host,
		"name": vmName, "image": ova, "power_on": false, "wait_for_ip": false} {
		a[k] = val
	}
	if err := writeJSON(args, a); err != nil {
		return failedSection(sec.Title, err)
	}
	var modMiBs []float64
	ours, err := measure(ctx, "svm_deploy (process)", Cmd{Argv: []string{filepath.Join(e.Root, "library", "svm_deploy"), args}, Env: connEnv},
		e.Runs, 0, 0, clean, func(s Sample) error {
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
			modMiBs = append(modMiBs, res.Upload.MiBPerS)
			return nil
		})
	if err != nil {
		sec.Notes = append(sec.Notes, "svm_deploy not measured: "+oneLine(err.Error()))
	} else {
		sec.Rows = append(sec.Rows, Row{Series: ours, Extra: map[string]Stat{"mib_per_s": throughput(ours), "module_reported_mib_per_s": stat(modMiBs)}})
	}

	govc, gerr := measure(ctx, "govc import.ova", Cmd{Argv: []string{e.Govc, "import.ova", "-name", vmName, "-ds", v.SharedDatastore,
		"-dc", v.Datacenter, "-pool", "/" + v.Datacenter + "/host/" + v.Cluster + "/Resources",
		"-host", "/" + v.Datacenter + "/host/" + v.Cluster + "/" + host, ova}, Env: l.govcEnv()},
		e.Runs, 0, 0, clean, nil)
	if gerr != nil {
		sec.Notes = append(sec.Notes, "govc import.ova not measured: "+oneLine(gerr.Error()))
	} else {
		sec.Rows = append(sec.Rows, Row{Series: govc, Extra: map[string]Stat{"mib_per_s": throughput(govc)}})
	}

	put, perr := rawPut(ctx, e, l, ova, disk)
	if perr != nil {
		sec.Notes = append(sec.Notes, "raw PUT not measured: "+oneLine(perr.Error()))
	} else {
		sec.Rows = append(sec.Rows, Row{Series: put, Extra: map[string]Stat{"mib_per_s": throughput(put)}})
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
		r := ours.Time.Median / govc.Time.Median
		sec.Goals = append(sec.Goals, Goal{Figure: "svm_deploy / govc import.ova (time)", Value: r, Unit: "x", Target: "<= 1.1", Met: boolp(r <= 1.1)})
	}
	if err == nil {
		sec.Goals = append(sec.Goals, Goal{Figure: "svm_deploy peak RSS", Value: ours.RSSMiB.Max, Unit: "MiB (max of runs)", Target: "< 64", Met: boolp(ours.RSSMiB.Max < 64)})
	}
	if err == nil && perr == nil {
		// The goal is about the upload: the module's own measure of its
		// transfer (first byte to lease complete) against curl's whole
		// PUT. The whole run, with login, lookups and the import spec
		// around the upload, is reported beside it.
		r := stat(modMiBs).Median / throughput(put).Median
		sec.Goals = append(sec.Goals, Goal{Figure: "svm_deploy upload throughput / raw PUT", Value: r * 100, Unit: "%", Target: ">= 90", Met: boolp(r >= 0.9)})
		r = throughput(ours).Median / throughput(put).Median
		sec.Goals = append(sec.Goals, Goal{Figure: "svm_deploy whole-run throughput / raw PUT", Value: r * 100, Unit: "%", Target: "reported (login, lookups and import spec included)"})
	}
	if err == nil && pyErr == nil {
		r := py.Time.Median / ours.Time.Median
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

// rawPut opens one import lease on the lab's vCenter and times curl -T
// of the disk to its device URL; the lease is aborted and its VM deleted
// afterwards.
func rawPut(ctx context.Context, e *Env, l *lab, ova, disk string) (Series, error) {
	const name = "bench-rawput"
	desc, err := ovfDescriptor(ova)
	if err != nil {
		return Series{}, err
	}
	fd := find.NewFinder(l.c.Client, true)
	dc, err := fd.Datacenter(ctx, l.Vars.Datacenter)
	if err != nil {
		return Series{}, err
	}
	fd.SetDatacenter(dc)
	pool, err := fd.ResourcePool(ctx, "/"+l.Vars.Datacenter+"/host/"+l.Vars.Cluster+"/Resources")
	if err != nil {
		return Series{}, err
	}
	ds, err := fd.Datastore(ctx, l.Vars.SharedDatastore)
	if err != nil {
		return Series{}, err
	}
	host, err := fd.HostSystem(ctx, l.Vars.ESXiHosts[0])
	if err != nil {
		return Series{}, err
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return Series{}, err
	}
	hr := host.Reference()
	isr, err := ovf.NewManager(l.c.Client).CreateImportSpec(ctx, desc, pool, ds,
		&types.OvfCreateImportSpecParams{EntityName: name, HostSystem: &hr, DiskProvisioning: "thin"})
	if err != nil {
		return Series{}, fmt.Errorf("create import spec: %w", err)
	}
	lease, err := pool.ImportVApp(ctx, isr.ImportSpec, folders.VmFolder, host)
	if err != nil {
		return Series{}, fmt.Errorf("import vapp: %w", err)
	}
	defer func() {
		_ = lease.Abort(context.Background(), nil) // the lease only served the PUT
		_ = l.destroyVM(context.Background(), name)
	}()
	info, err := lease.Wait(ctx, isr.FileItem)
	if err != nil {
		return Series{}, fmt.Errorf("wait for lease: %w", err)
	}
	if len(info.Items) == 0 {
		return Series{}, fmt.Errorf("lease has no device URL")
	}
	u := info.Items[0].URL.String()
	return measure(ctx, "raw HTTPS PUT (curl -T) to the NFC URL", Cmd{Argv: []string{"curl", "-sS", "-f", "--cacert", l.Vars.VCenterCAFile,
		"-H", "Content-Type: application/x-vnd.vmware-streamVmdk", "-T", disk, "-o", "/dev/null", u}},
		e.Runs, 1, 0, nil, nil)
}
