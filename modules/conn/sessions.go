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

// Sessions are the connections of one module run. The first call logs in
// and later ones reuse the session, so Observe and Apply cost one vCenter
// login and one KSC login per task, not two (vCenter limits sessions per
// user; each login is a TLS handshake and two round trips). Modules embed
// it; its Close makes them an ansible.Closer, which the runtime calls once
// the run ends, however it ended.
type Sessions struct {
	vc  *vsphere.Session
	ksc *ksc.Client
}

// VCenter returns the run's vCenter session, logging in on first use.
func (s *Sessions) VCenter(ctx context.Context, o VCenterOptions) (*vsphere.Session, error) {
	if s.vc == nil {
		vc, err := o.Connect(ctx)
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
		c, err := o.Client()
		if err != nil {
			return nil, err
		}
		s.ksc = c
	}
	return s.ksc, nil
}

// Close logs out of whatever was opened. A failed logout only leaves a
// session to expire on the server, so its error is dropped.
func (s *Sessions) Close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), logoutTimeout)
	defer cancel()
	if s.ksc != nil {
		_ = s.ksc.Close(ctx)
		s.ksc = nil
	}
	if s.vc != nil {
		_ = s.vc.Logout(ctx)
		s.vc = nil
	}
}
