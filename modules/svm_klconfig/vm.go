package svmklconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ksvla/lightagent/internal/klconfig"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/ksvla/lightagent/modules/conn"
)

// How the SVM's host key is trusted in this run.
const (
	trustPolicy       = "policy"        // known_hosts / host_key / host_key_checking, as without vm
	trustRecorded     = "recorded"      // the key recorded on the VM, strictly
	trustFirstContact = "first_contact" // the VM awaits first contact: the key it presents now
)

// vmLink is the SVM's VM in vCenter (option vm) as Observe read it: where it answers and the
// records kept on it. The vCenter session that reads and writes them is the run's (conn.Sessions).
type vmLink struct {
	contact vsphere.Contact
	trust   string
	key     ssh.PublicKey // recorded, or presented at first contact
	// record is the klconfig record found on the VM, nil when it holds none.
	record *Record
}

// fingerprint of the key the run trusts ("" under the user's policy).
func (v *vmLink) fingerprint() string {
	if v == nil || v.key == nil {
		return ""
	}
	return ssh.FingerprintSHA256(v.key)
}

// vcenter is the run's vCenter session (option vcenter), logging in on first use.
func (m *module) vcenter(ctx context.Context, o Options) (*vsphere.Session, error) {
	vco := conn.VCenterOptions{}
	if o.VCenter != nil {
		vco = *o.VCenter
	}
	sess, err := m.VCenter(ctx, vco)
	if err != nil {
		return nil, fmt.Errorf("vcenter: %w", err)
	}
	return sess, nil
}

// openVM reads the VM from vCenter, settles the address to talk to (host, checked against the
// VM's) and how its host key is trusted. It changes nothing.
func (m *module) openVM(ctx context.Context, o Options) (v *vmLink, host string, err error) {
	sess, err := m.vcenter(ctx, o)
	if err != nil {
		return nil, "", err
	}
	c, err := sess.FindContact(ctx, o.Datacenter, o.VM)
	if err != nil {
		return nil, "", err
	}
	v = &vmLink{contact: c, trust: trustPolicy}
	if len(c.IPs) == 0 {
		return nil, "", fmt.Errorf("vm %s (%s) reports no IP address in vCenter: the SVM must be powered on with VMware Tools running; its address is where its first contact is trusted", o.VM, c.PowerState)
	}
	switch host = o.Host; {
	case host == "":
		host = c.IP()
	case !slices.Contains(c.IPs, host):
		return nil, "", fmt.Errorf("host %s is not an address vCenter reports for vm %s (%s): leave host out to use vCenter's, or fix it", host, o.VM, strings.Join(c.IPs, ", "))
	}
	if line := c.Marks[vsphere.MarkHostKey]; line != "" {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, "", fmt.Errorf("vm %s: custom attribute %s does not hold an SSH public key (%v): clear it only after verifying the SVM's host key by other means", o.VM, vsphere.MarkHostKey, err)
		}
		v.key, v.trust = key, trustRecorded
	} else if c.Marks[vsphere.MarkFirstContact] == vsphere.FirstContactPending {
		addr := net.JoinHostPort(host, strconv.Itoa(o.Port))
		key, err := presentedKey(ctx, addr, time.Duration(o.ConnectTimeout)*time.Second, time.Duration(o.WaitTimeout)*time.Second)
		if err != nil {
			if errors.Is(err, klconfig.ErrUnreachable) {
				return nil, "", fmt.Errorf("first contact with vm %s at %s: the SVM does not answer over SSH within wait_timeout=%ds (%w); rerun once it does", o.VM, addr, o.WaitTimeout, err)
			}
			return nil, "", fmt.Errorf("first contact with vm %s: %w", o.VM, err)
		}
		v.key, v.trust = key, trustFirstContact
	}
	if raw := c.Marks[vsphere.MarkKlconfig]; raw != "" {
		var rec Record
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return nil, "", fmt.Errorf("vm %s: custom attribute %s is not a klconfig record (%v): clear it to start over (the next run applies every setting again)", o.VM, vsphere.MarkKlconfig, err)
		}
		v.record = &rec
	}
	return v, host, nil
}

// keyLine is the key the VM settled, authorized_keys form ("" under the user's policy).
func (v *vmLink) keyLine() string {
	if v.key == nil {
		return ""
	}
	return keyLine(v.key)
}

// keyLine is the authorized_keys form of key, as the VM records it.
func keyLine(key ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// saveRecord keeps the record on the VM, where every controller reads it.
func (v *vmLink) saveRecord(ctx context.Context, sess *vsphere.Session, rec Record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("record on vm %s: %w", v.contact.Name, err)
	}
	if err := sess.SetContactMarks(ctx, v.contact, map[string]string{vsphere.MarkKlconfig: string(data)}); err != nil {
		return fmt.Errorf("record on vm %s: %w", v.contact.Name, err)
	}
	return nil
}

// presentedKey reads the host key addr presents, waiting with backoff up to wait while the SVM
// does not answer yet (a freshly booted SVM's sshd comes up after its address).
func presentedKey(ctx context.Context, addr string, connect, wait time.Duration) (ssh.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, max(wait, connect))
	defer cancel()
	delay := 250 * time.Millisecond
	var last error // the last "not answering", which says more than the deadline that ended the wait
	for {
		key, err := klconfig.FetchHostKey(ctx, addr, connect)
		switch {
		case err == nil:
			return key, nil
		case errors.Is(err, klconfig.ErrUnreachable):
			last = err
		case last != nil && ctx.Err() != nil:
			return nil, last
		default:
			return nil, err
		}
		if sleep(ctx, delay) != nil {
			return nil, last
		}
		delay = min(2*delay, 5*time.Second)
	}
}
