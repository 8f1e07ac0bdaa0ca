package svmklconfig

import (
	"slices"

	"github.com/ksvla/lightagent/internal/klconfig"
)

type stepKind int

const (
	stepCommand    stepKind = iota
	stepNagent              // nagent; nagentinstall first when Network Agent is missing
	stepPasswd              // passwd <user>; for klconfig, later sessions use the new password
	stepNetRestart          // manageservices restart network, then follow the SVM
	// Steps on the VM in vCenter (option vm), no klconfig command:
	stepTrustKey   // first contact: record the presented host key on the VM, clear the mark
	stepRecordKey  // record the host key known_hosts verified on the VM
	stepRecordSync // keep the controller's record on the VM, which holds none yet
)

// vmSteps name the VM steps in results.
var vmSteps = map[stepKind]string{
	stepTrustKey:   "trust the host key presented at first contact and record it on the VM",
	stepRecordKey:  "record the verified host key on the VM",
	stepRecordSync: "record the applied settings on the VM",
}

// step is one klconfig command of the plan and the record entry it earns once it succeeded.
type step struct {
	Kind    stepKind
	Cmd     klconfig.Command
	Setting string // record key; "" when nothing is recorded
	Digest  string
	Value   string // recorded next to the digest; "" for secrets
	User    string // stepPasswd
}

// current is what the plan compares the wish with: what klconfig read back and the record.
type current struct {
	Host        string
	Nameservers []string // read only when DNS is managed
	Search      []string
	Record      Record
	// LoginPassword is the klconfig password that logged in ("" when a key did): it tells for
	// sure whether passwords.klconfig is already set.
	LoginPassword string
	// ImageLogin: only the image's password logged in; the operator's replaces it.
	ImageLogin bool
	VM         *vmView // option vm
}

// vmView is what the plan needs to know of the SVM's VM.
type vmView struct {
	Name        string
	Trust       string // trustPolicy, trustRecorded or trustFirstContact
	Verified    bool   // trustPolicy: known_hosts or host_key verified the key (not host_key_checking=off)
	Fingerprint string
	KeyLine     string // the host key, authorized_keys form
	HasRecord   bool   // the VM holds a klconfig record
}

// Plan is svm_klconfig's plan: ordered klconfig commands and the settings before and after. It
// is a value: the connection Apply goes on with is the run's (conn.Sessions).
type Plan struct {
	Steps    []step
	FollowTo string // where the SVM answers after the network restart step
	Before   map[string]any
	After    map[string]any
	Settings map[string]any // per setting: current, desired, changed

	// As Observe found it.
	link       reach
	reads      []string // read-only raw commands Observe ran
	outputs    []any    // their output
	record     Record
	vm         *vmView // option vm
	imageLogin bool    // the klconfig passwd step replaces the image's password
	gather     map[string]any

	// What Apply did: the commands it ran (nil until it runs) and where the SVM answers.
	ran  []string
	host string
}

// Report implements ansible.Reporter: the result's values, once the run ends.
func (p *Plan) Report() map[string]any {
	out := map[string]any{"settings": p.Settings, "host": p.host}
	if p.ran != nil {
		out["commands"] = p.ran
	} else {
		out["commands"] = append(append([]string{}, p.reads...), p.Commands()...)
	}
	if v := p.vm; v != nil {
		out["vm"] = map[string]any{"name": v.Name, "host_key": v.Fingerprint, "trust": v.Trust, "steps": p.VMSteps()}
	}
	if p.gather != nil {
		out["klconfig"] = p.gather
	}
	if p.outputs != nil {
		out["outputs"] = p.outputs
	}
	return out
}

// Empty implements ansible.Plan.
func (p *Plan) Empty() bool { return len(p.Steps) == 0 }

// Diff implements ansible.Plan.
func (p *Plan) Diff() (before, after any) { return p.Before, p.After }

// Commands lists the command lines of the plan as results show them.
func (p *Plan) Commands() []string {
	out := make([]string, 0, len(p.Steps))
	for _, s := range p.Steps {
		if s.Cmd.Name != "" {
			out = append(out, display(s.Cmd))
		}
	}
	return out
}

// VMSteps lists what the plan does on the VM in vCenter.
func (p *Plan) VMSteps() []string {
	out := []string{}
	for _, s := range p.Steps {
		if name, ok := vmSteps[s.Kind]; ok {
			out = append(out, name)
		}
	}
	return out
}

// Secret placeholders in diffs and summaries: a password is never shown, not even as a digest.
const (
	pwSet     = "(set)"
	pwChanged = "(changed)"
	pwImage   = "(image's)"
)

// makePlan compares the wish with what is, in the vendor's order: settings that leave the SVM
// where it is, then passwords (klconfig's last), service restarts, and the network change last
// because it moves the SVM away. It makes no I/O.
func makePlan(d desired, cur current) *Plan {
	p := &Plan{Before: map[string]any{}, After: map[string]any{}, Settings: map[string]any{}}
	note := func(setting string, before, after any, changed bool) {
		p.Before[setting], p.After[setting] = before, after
		p.Settings[setting] = map[string]any{"current": before, "desired": after, "changed": changed}
	}
	recordedValue := func(setting string) any {
		if e, ok := cur.Record.Settings[setting]; ok {
			return e.Value
		}
		return nil
	}
	changedRecorded := func(r recorded) (step, bool) {
		dg := digest(r.Value)
		changed := cur.Record.Settings[r.Setting].Digest != dg
		note(r.Setting, recordedValue(r.Setting), r.Value, changed)
		return step{Kind: stepCommand, Cmd: r.Cmd, Setting: r.Setting, Digest: dg, Value: r.Value}, changed
	}
	scanserver := false
	for _, r := range d.Recorded {
		if r.Setting == setKSC || r.Setting == setSSHPublicKey {
			continue // after DNS: the Administration Server may be named through it
		}
		if s, changed := changedRecorded(r); changed {
			p.Steps = append(p.Steps, s)
			scanserver = scanserver || r.Setting == setConnLang
		}
	}

	// dns clears the search list, so whenever dns runs the search list is set again: the wished
	// one, or the one the SVM had.
	dnsChanged := false
	if d.DNSServers != nil {
		dnsChanged = !slices.Equal(d.DNSServers, cur.Nameservers)
		note(setDNSServers, nonNil(cur.Nameservers), d.DNSServers, dnsChanged)
		if dnsChanged {
			cmd, _ := klconfig.DNS(d.DNSServers...) // checked by buildDesired
			p.Steps = append(p.Steps, step{Kind: stepCommand, Cmd: cmd})
		}
	}
	search := d.DNSSearch
	if d.DNSSearch != nil {
		note(setDNSSearch, nonNil(cur.Search), d.DNSSearch, !slices.Equal(d.DNSSearch, cur.Search))
	} else {
		search = cur.Search
	}
	if (d.DNSSearch != nil && !slices.Equal(d.DNSSearch, cur.Search)) || (dnsChanged && len(search) > 0) {
		cmd, _ := klconfig.DNSSearch(search...) // checked by buildDesired, or read from the SVM
		p.Steps = append(p.Steps, step{Kind: stepCommand, Cmd: cmd})
	}

	for _, r := range d.Recorded {
		if r.Setting != setKSC && r.Setting != setSSHPublicKey {
			continue
		}
		if s, changed := changedRecorded(r); changed {
			if r.Setting == setKSC {
				s.Kind = stepNagent
			}
			p.Steps = append(p.Steps, s)
		}
	}
	if !d.ReadOnly {
		for _, c := range d.Raw {
			p.Steps = append(p.Steps, step{Kind: stepCommand, Cmd: c})
		}
	}

	pwBefore, pwAfter := map[string]any{}, map[string]any{}
	pwChangedAny := false
	for _, pw := range d.Passwords {
		secret := string(pw.Cmd.Stdin[:len(pw.Cmd.Stdin)-1]) // Passwd appends the newline
		dg := secretDigest(cur.Record.Salt, pw.User, secret)
		setting := "passwords." + pw.User
		changed := cur.Record.Settings[setting].Digest != dg
		if pw.User == "klconfig" && cur.LoginPassword != "" {
			// A password login proves which password is current; the record only remembers.
			changed = cur.LoginPassword != secret
		}
		pwBefore[pw.User], pwAfter[pw.User] = pwSet, pwSet
		if pw.User == "klconfig" && cur.ImageLogin {
			pwBefore[pw.User] = pwImage
		}
		if changed {
			pwAfter[pw.User] = pwChanged
			pwChangedAny = true
			p.Steps = append(p.Steps, step{Kind: stepPasswd, Cmd: pw.Cmd, Setting: setting, Digest: dg, User: pw.User})
		}
	}
	if len(d.Passwords) > 0 {
		p.Before["passwords"], p.After["passwords"] = pwBefore, pwAfter
		p.Settings["passwords"] = map[string]any{"current": pwBefore, "desired": pwAfter, "changed": pwChangedAny}
	}

	var netStep *step
	if d.Network != nil {
		if s, changed := changedRecorded(*d.Network); changed {
			netStep = &s
		}
	}
	something := len(p.Steps) > 0 || netStep != nil
	services := []string{}
	if something {
		services = append(services, d.Services...)
	}
	if scanserver && !slices.Contains(services, "scanserver") {
		services = append(services, "scanserver")
	}
	for chunk := range slices.Chunk(services, 3) { // manageservices takes 1 to 3 services
		cmd, _ := klconfig.ManageServices("restart", chunk...) // names checked by the spec's choices
		p.Steps = append(p.Steps, step{Kind: stepCommand, Cmd: cmd})
	}

	if netStep != nil || (something && d.NetRestart) {
		p.FollowTo = cur.Host
		if netStep != nil {
			p.Steps = append(p.Steps, *netStep)
			if d.FollowTo != "" {
				p.FollowTo = d.FollowTo
			}
		}
		restart, _ := klconfig.ManageServices("restart", "network")
		p.Steps = append(p.Steps, step{Kind: stepNetRestart, Cmd: restart})
		if p.FollowTo != cur.Host {
			p.Before["host"], p.After["host"] = cur.Host, p.FollowTo
		}
	}
	if v := cur.VM; v != nil {
		p.Steps = append(vmPlan(v, cur.Record, note), p.Steps...)
	}
	return p
}

// vmPlan is what the run does on the VM first: trusting the key comes before anything is sent
// under it, so an interrupted run leaves the key recorded and the next one verifies it.
func vmPlan(v *vmView, rec Record, note func(setting string, before, after any, changed bool)) []step {
	var out []step
	switch {
	case v.Trust == trustFirstContact:
		out = append(out, step{Kind: stepTrustKey})
		note("host_key", "(first contact)", v.Fingerprint, true)
	case v.Trust == trustPolicy && v.Verified:
		out = append(out, step{Kind: stepRecordKey})
		note("host_key", "(not recorded)", v.Fingerprint, true)
	}
	if !v.HasRecord && len(rec.Settings) > 0 {
		out = append(out, step{Kind: stepRecordSync})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
