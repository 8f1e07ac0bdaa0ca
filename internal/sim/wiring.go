package sim

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/sim/kscsim"
	"github.com/ksvla/lightagent/internal/sim/svm"
	"github.com/ksvla/lightagent/internal/sim/vcenter"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// svmRec is an SVM the lab knows: a VM recognised as an SVM.
type svmRec struct {
	name, host, version string
	ref                 types.ManagedObjectReference
	on                  bool
	sim                 *svm.SVM
	kscID               string // KSC host record, once Network Agent connected
	registered          bool   // Network Agent points at this lab's KSC
	activated           bool   // a key was added by the activation task (or long ago, seeded)
	bases               time.Time
}

// agentRec is a protected VM with its Light Agent.
type agentRec struct {
	name, host, ip, version string
	product                 AgentProduct
	kscID                   string
	on                      bool
	svm                     string // SVM the agent is connected to; "" = unprotected
	evaluated               bool   // a gap at the first evaluation counts too
	// woke: powered on since the last evaluation; waking up to no
	// compatible SVM is a gap as much as losing one.
	woke bool
}

// Gap is a moment a powered-on protected VM had no compatible SVM.
type Gap struct {
	Time         time.Time
	VM, Host     string
	AgentVersion string
	Reason       string // the change that caused it
}

// firstBootKey is the extraConfig key prefix of first startup commands.
const firstBootKey = "guestinfo.klfirstboot.cmd"

// firstBootCommands returns guestinfo.klfirstboot.cmdN values ordered by N.
func firstBootCommands(extra map[string]string) []string {
	type cmd struct {
		n int
		v string
	}
	var cmds []cmd
	for k, v := range extra {
		if n, err := strconv.Atoi(strings.TrimPrefix(k, firstBootKey)); err == nil && strings.HasPrefix(k, firstBootKey) {
			cmds = append(cmds, cmd{n, v})
		}
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].n < cmds[j].n })
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = c.v
	}
	return out
}

// recognise tells whether vm is an SVM and its Protection Server version:
// by the lab's own record, by marks, by the vApp product, or because the
// lab seeded it (unmarked seeded SVMs carry nothing else).
func (l *Lab) recognise(vm vcenter.VM) (string, bool) {
	if rec, ok := l.svms[vm.Name]; ok {
		return rec.version, true
	}
	if vm.CustomValues[vsphere.MarkRole] == vsphere.RoleSVM {
		if v := vm.CustomValues[vsphere.MarkVersion]; v != "" {
			return v, true
		}
		if vm.Product.Version != "" {
			return vm.Product.Version, true
		}
	}
	if vm.Product.Name == l.cfg.PSDisplayName && vm.Product.Version != "" {
		return vm.Product.Version, true
	}
	if l.seeded[vm.Name] {
		return l.cfg.OldVersion, true
	}
	return "", false
}

func (l *Lab) vmPoweredOn(vm vcenter.VM) {
	if a, ok := l.agents[vm.Name]; ok {
		a.woke = !a.on
		a.on = true
		l.ksc.SetVisible(a.kscID, true)
		l.evaluateLocked(vm.Name + " powered on")
		return
	}
	version, ok := l.recognise(vm)
	if !ok {
		return
	}
	rec := l.svms[vm.Name]
	if rec == nil {
		rec = &svmRec{name: vm.Name, version: version}
		l.svms[vm.Name] = rec
	}
	rec.ref, rec.host, rec.on = vm.Ref, vm.Host, true
	first := rec.sim == nil
	if first {
		name := vm.Name
		// Seeded SVMs were configured long ago with the operator's password;
		// a new one has the image's and a host key generated at first boot.
		key, password := svm.HostKeyFromSeed(l.keySeed+name), l.cfg.SVMPassword
		if !l.seeded[name] {
			key, password = svm.HostKeyFromSeed(randomSecret("firstboot-")), l.cfg.ImagePassword
		}
		sim, err := svm.New(svm.Config{
			Name: name, Version: version, IP: l.loopbackIP(name), Port: l.cfg.SSHPort,
			HostKey: key, Password: password, RootPassword: password,
			Hosts:               map[string]string{KSCHostName: l.kscIP},
			NetworkRestartDelay: l.cfg.NetworkRestartDelay, RebootDelay: l.cfg.RebootDelay,
			Hooks: svm.Hooks{
				Nagent: func(_ *svm.SVM, address string, sslPort, port int) {
					l.queue.put(func() { l.nagentSet(name, address, sslPort) })
				},
				AddressChanged: func(_ *svm.SVM, _, _ string) { l.queue.put(func() { l.addressChanged(name) }) },
				Rebooted:       func(*svm.SVM) { l.queue.put(func() { l.addressChanged(name) }) },
				Command:        func(_ *svm.SVM, cmdline string, _ bool) { l.countCommand(name, cmdline) },
			},
		})
		if err != nil {
			l.cfg.Logf("lab: svm %s: %v", name, err)
			return
		}
		rec.sim = sim
		sim.RefuseSSH(l.refused[name])
		if cmds := firstBootCommands(vm.ExtraConfig); len(cmds) > 0 {
			sim.FirstBoot(cmds)
		}
	}
	if err := rec.sim.Start(); err != nil {
		l.cfg.Logf("lab: %v", err)
		return
	}
	if first && l.seeded[rec.name] {
		// Seeded SVMs were configured, activated and updated long ago:
		// Network Agent already points at KSC (the hook registers them).
		rec.activated, rec.bases = true, time.Now().Add(-3*time.Hour)
		if out, ok := rec.sim.Exec(fmt.Sprintf("nagent %s %d %d", l.kscIP, NagentSSLPort, NagentPort), nil); !ok {
			l.cfg.Logf("lab: configure nagent on %s: %s", rec.name, out)
		}
	}
	l.publishLocked(rec)
	l.evaluateLocked(vm.Name + " powered on")
}

// publishLocked makes the SVM's current address visible: guest IP in
// vCenter, IP and visibility in KSC, host key in known_hosts.
func (l *Lab) publishLocked(rec *svmRec) {
	ip := rec.sim.IP()
	if err := l.vc.SetGuestIP(context.Background(), rec.ref, ip); err != nil {
		l.cfg.Logf("lab: %v", err)
	}
	if rec.registered {
		if h, ok := l.ksc.Host(rec.kscID); ok && h.IP != ip {
			h.IP = ip
			l.ksc.UpsertHost(h)
		}
		l.ksc.SetVisible(rec.kscID, true)
	}
	_ = l.writeKnownHostsLocked() // logged inside; the lab keeps running
}

func (l *Lab) nagentSet(name, address string, sslPort int) {
	rec := l.svms[name]
	if rec == nil || rec.sim == nil {
		return
	}
	ok := (address == l.kscIP || strings.EqualFold(address, KSCHostName)) && sslPort == NagentSSLPort
	if !ok {
		// Network Agent now points elsewhere: KSC stops hearing from it.
		l.cfg.Logf("lab: %s: nagent %s:%d is not this lab's KSC (%s or %s, ssl port %d)", name, address, sslPort, l.kscIP, KSCHostName, NagentSSLPort)
		rec.registered = false
		if rec.kscID != "" {
			l.ksc.SetVisible(rec.kscID, false)
		}
		l.evaluateLocked(name + " disconnected from KSC")
		return
	}
	rec.kscID = l.ksc.UpsertHost(l.svmKSCHost(rec))
	rec.registered = true
	if rec.on {
		l.ksc.SetVisible(rec.kscID, true)
	}
	l.evaluateLocked(name + " connected to KSC")
}

func (l *Lab) addressChanged(name string) {
	if rec := l.svms[name]; rec != nil && rec.sim != nil && rec.on {
		l.publishLocked(rec)
		l.evaluateLocked(name + " network restarted")
	}
}

func (l *Lab) vmPoweredOff(vm vcenter.VM) {
	if a, ok := l.agents[vm.Name]; ok {
		a.on = false
		l.ksc.SetVisible(a.kscID, false)
		l.evaluateLocked(vm.Name + " powered off")
		return
	}
	rec := l.svms[vm.Name]
	if rec == nil {
		return
	}
	rec.on = false
	if rec.sim != nil {
		_ = rec.sim.Stop() // Stop never fails; it waits for sessions to drop
	}
	if rec.kscID != "" {
		l.ksc.SetVisible(rec.kscID, false)
	}
	// A powered-off VM has no guest IP; the VM may already be gone.
	if err := l.vc.SetGuestIP(context.Background(), rec.ref, ""); err != nil {
		l.cfg.Logf("lab: %v", err)
	}
	l.evaluateLocked(vm.Name + " powered off")
}

func (l *Lab) vmDestroyed(vm vcenter.VM) {
	if _, ok := l.agents[vm.Name]; ok {
		delete(l.agents, vm.Name)
		return
	}
	rec := l.svms[vm.Name]
	if rec == nil || rec.ref != vm.Ref {
		return
	}
	if rec.sim != nil {
		_ = rec.sim.Stop() // Stop never fails
	}
	// The KSC record stays: KSC keeps removed devices until the group's
	// retention period or until someone deletes them (ksc_purge).
	delete(l.svms, vm.Name)
	l.historyLocked(rec, EventDestroyed)
	_ = l.writeKnownHostsLocked() // logged inside; the lab keeps running
	l.evaluateLocked(vm.Name + " destroyed")
}

// kscHost builds a KSC host record for a lab VM; id reuses a record.
func (l *Lab) kscHost(name, ip string, group int, p kscsim.Product, id ...string) kscsim.Host {
	win := strings.ToUpper(name)
	if len(win) > 15 {
		win = win[:15]
	}
	h := kscsim.Host{
		DisplayName: name, DNSName: name, DNSDomain: "lab.local", FQDN: name + ".lab.local", WinHostName: win,
		IP: ip, GroupID: group, Products: []kscsim.Product{nagentProduct(), p},
		Status: kscsim.StatusVisible | kscsim.StatusInGroup | kscsim.StatusNagentInst | kscsim.StatusNagentAlive | kscsim.StatusProductInst,
	}
	if len(id) > 0 {
		h.ID = id[0]
	}
	return h
}

// nagentProduct is the Network Agent every managed host lists.
func nagentProduct() kscsim.Product {
	return kscsim.Product{Key: kscsim.NagentProduct, Version: "1.0.0.0", DisplayName: NagentDisplayName, ProdVersion: nagentVersion}
}

// svmKSCHost is the SVM's KSC record as its state makes it: without a key
// KSC shows "licence expired", without databases no databases date.
func (l *Lab) svmKSCHost(rec *svmRec) kscsim.Host {
	h := l.kscHost(rec.name, rec.sim.IP(), l.svmGrp, kscsim.Product{
		Key: l.cfg.PSKey, Version: rec.version, DisplayName: l.cfg.PSDisplayName, ProdVersion: rec.version}, rec.kscID)
	h.OSName = "Linux (SVM)"
	if !rec.activated {
		h.StatusMask |= kscsim.StatusMaskLicence
	}
	h.BasesTime = rec.bases
	return h
}
