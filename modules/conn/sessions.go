package conn

import (
	"context"
	"time"

	"github.com/ksvla/lightagent/internal/ksc"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// logoutTimeout bounds the logouts at the end of a run, which happen even
// when the module's timeout has run out.
const logoutTimeout = 10 * time.Second

// Sessions holds every connection of one module run: vCenter, KSC and the
// SVM's SSH. The first call logs in and later ones reuse the session, so
// Observe and Apply cost one vCenter login and one KSC login per task, not
// two (vCenter limits sessions per user; each login is a TLS handshake and
// two round trips). Modules embed it; its Close makes them an
// ansible.Closer, which the runtime calls once the run ends, however it
// ended, so no phase carries a connection or its cleanup to the next.
type Sessions struct {
	vc  *vsphere.Session
	ksc *ksc.Client
	ssh *SSH
}

// VCenter returns the run's vCenter session, logging in on first use.
func (s *Sessions) VCenter(ctx context.Context, o VCenterOptions) (*vsphere.Session, error) {
	if s.vc == nil {
		vc, err := o.connect(ctx)
		if err != nil {
			return nil, err
		}
		s.vc = vc
	}
	return s.vc, nil
}

// KSC returns the run's KSC client (which logs in on its first call).
func (s *Sessions) KSC(o KSCOptions) (*ksc.Client, error) {
	if s.ksc == nil {
		c, err := o.client()
		if err != nil {
			return nil, err
		}
		s.ksc = c
	}
	return s.ksc, nil
}

// OpenSSH opens the run's SSH connection to the SVM t names; once open,
// it returns that connection as it is now (it may have followed the SVM to
// a new address), whatever t says.
func (s *Sessions) OpenSSH(t SSHTarget) (*SSH, error) {
	if s.ssh == nil {
		c, err := openSSH(t)
		if err != nil {
			return nil, err
		}
		s.ssh = c
	}
	return s.ssh, nil
}

// SSH is the run's SSH connection to the SVM, nil before OpenSSH.
func (s *Sessions) SSH() *SSH { return s.ssh }

// Close ends whatever was opened. A failed logout only leaves a session to
// expire on the server, so its error is dropped.
func (s *Sessions) Close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), logoutTimeout)
	defer cancel()
	if s.ssh != nil {
		s.ssh.close()
		s.ssh = nil
	}
	if s.ksc != nil {
		_ = s.ksc.Close(ctx)
		s.ksc = nil
	}
	if s.vc != nil {
		_ = s.vc.Logout(ctx)
		s.vc = nil
	}
}
