// Package vcenter runs the lab's vCenter: the govmomi simulator (the same
// govmomi version the modules use), seeded like a small production
// cluster with old SVMs and protected VMs, served over HTTPS with its own
// certificate, and watched so the lab can react to VMs being powered on,
// powered off and destroyed.
package vcenter

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Inventory names the lab seeds. Host, datastore and VM names derive from
// these with the helpers below, so other packages can name them ahead.
const (
	Datacenter      = "DC1"
	Cluster         = "Cluster1"
	SharedDatastore = "shared-ds"
	VMNetwork       = "VM Network"
	DVSwitch        = "DSwitch-Lab"
	DVPortgroup     = "dvpg-servers"
	// SecondDatacenter holds one standalone host with a running old SVM
	// and no protected VM, served by the same KSC (Config.SecondDatacenter).
	SecondDatacenter = "DC2"
	SecondHost       = "esxi-dc2-01.lab.local"
)

// Config configures a lab vCenter. Zero values take the documented defaults.
type Config struct {
	Listen     string // "127.0.0.1:0" by default; "127.0.0.1:443" works when the port is free
	Username   string // default "administrator@vsphere.local"
	Password   string // default: random, read it back with Password()
	Hosts      int    // ESXi hosts in Cluster1; default 4
	VMsPerHost int    // protected VMs per host; default 3; negative means none
	OldVersion string // Protection Server version of the seeded SVMs; default "6.1.0.100"
	// OldImageSHA256 is the MarkImageSHA256 value of the seeded SVMs, the
	// checksum of the image they came from; default: a checksum derived
	// from OldVersion.
	OldImageSHA256 string
	// Unmarked seeds old SVMs as the vendor's wizard leaves them: no
	// custom attributes (the attribute definitions do not even exist) and
	// no vApp product, so only klconfig and KSC can recognise them.
	Unmarked bool
	// Product is the vApp product name of seeded SVMs (unless Unmarked);
	// default images.DefaultProduct.
	Product string
	// SecondDatacenter seeds SecondDatacenter: another datacenter whose
	// old SVM (on SecondHost) is registered in the same KSC, as when one
	// KSC serves several sites. Off by default: most labs need one site.
	SecondDatacenter bool
	// Capacity is every host's memory, processors and local datastore;
	// HostCapacity overrides it per host name (zero fields: Capacity's).
	Capacity     Capacity
	HostCapacity map[string]Capacity
	// NoHA leaves vSphere HA off in the cluster (hosts then power VMs on
	// through autostart); a production cluster has it on.
	NoHA bool
	// UnpinnedSeed seeds old SVMs without the DRS and HA VM overrides the
	// vendor's wizard gives them.
	UnpinnedSeed bool
	// ProtectedVMsStay seeds the protected VMs with DRS VM overrides that
	// disable DRS for them (a simplification: at a site they move).
	ProtectedVMsStay bool
	// Delay slows every SOAP call once seeding is done.
	Delay simulator.DelayConfig
	// Hooks are called by the watcher; see Hooks.
	Hooks Hooks
	// Logf receives watcher errors; nil discards them.
	Logf func(format string, args ...any)
}

// VCenter is a running lab vCenter.
type VCenter struct {
	cfg      Config
	model    *simulator.Model
	server   *simulator.Server
	cert     *x509.Certificate
	certPEM  []byte
	dir      string // certificate and datastore directories, removed by Close
	client   *govmomi.Client
	inv      Inventory
	cancel   context.CancelFunc
	watchErr chan error
	closed   sync.Once
	// logins and calls count SessionManager.Login and every SOAP call the
	// server received, for the load a run puts on vCenter.
	logins, calls atomic.Int64
}

// Load is what clients asked of vCenter since it started: SOAP calls and
// sessions opened (SessionManager.Login), the lab's own included.
func (v *VCenter) Load() (logins, calls int) {
	return int(v.logins.Load()), int(v.calls.Load())
}

func (c *Config) defaults() error {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.Username == "" {
		c.Username = "administrator@vsphere.local"
	}
	if c.Password == "" {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("generate vcenter password: %w", err)
		}
		c.Password = "Lab-" + hex.EncodeToString(b)
	}
	if c.Hosts <= 0 {
		c.Hosts = 4
	}
	if c.VMsPerHost == 0 {
		c.VMsPerHost = 3
	}
	if c.VMsPerHost < 0 {
		c.VMsPerHost = 0
	}
	if c.OldVersion == "" {
		c.OldVersion = "6.1.0.100"
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return nil
}

// Start builds and seeds the inventory, serves it over HTTPS and starts
// the watcher. It returns once the watcher has reported every VM that is
// already powered on (so the hooks have run for the seeded VMs).
func Start(ctx context.Context, cfg Config) (_ *VCenter, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	v := &VCenter{cfg: cfg}
	defer func() {
		if err != nil {
			v.Close()
		}
	}()
	if v.dir, err = os.MkdirTemp("", "ksvla-vcenter-"); err != nil {
		return nil, fmt.Errorf("start vcenter: %w", err)
	}
	tlsCert, err := v.newCertificate()
	if err != nil {
		return nil, err
	}

	v.model = simulator.VPX()
	// An empty model: the lab builds its own inventory with real API calls.
	v.model.Datacenter, v.model.Cluster, v.model.ClusterHost, v.model.Host = 0, 0, 0, 0
	v.model.Datastore, v.model.Machine, v.model.Portgroup = 0, 0, 0
	if err := v.model.Create(); err != nil {
		return nil, fmt.Errorf("create vcenter model: %w", err)
	}
	// Seeding talks to the service in-process: no HTTP, no session.
	internal, err := vim25.NewClient(ctx, v.model.Service)
	if err != nil {
		return nil, fmt.Errorf("connect to vcenter model: %w", err)
	}
	if v.inv, err = seed(ctx, internal, cfg, v.dir); err != nil {
		return nil, err
	}
	v.addAutoStartManagers()
	v.setCapacity()
	// The model's delay config is read through a pointer on every call:
	// setting it only now keeps seeding fast.
	v.model.DelayConfig = cfg.Delay

	v.model.Service.Listen = &url.URL{Host: cfg.Listen, User: url.UserPassword(cfg.Username, cfg.Password)}
	v.model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{tlsCert}}
	if v.server, err = newServer(v.model.Service); err != nil {
		return nil, fmt.Errorf("serve vcenter on %s: %w", cfg.Listen, err)
	}
	// Set before any client exists: no request has read the handler yet.
	v.server.Config.Handler = v.guard(v.server.Config.Handler)
	if v.client, err = v.Client(ctx); err != nil {
		return nil, err
	}

	wctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	v.watchErr = make(chan error, 1)
	synced := make(chan struct{})
	go func() { v.watchErr <- v.watch(wctx, synced) }()
	select {
	case <-synced:
		return v, nil
	case err := <-v.watchErr:
		v.watchErr <- err
		return nil, fmt.Errorf("start vcenter watcher: %w", err)
	case <-ctx.Done():
		return nil, fmt.Errorf("start vcenter watcher: %w", ctx.Err())
	}
}

// newServer turns the simulator's panic on a busy port into an error.
func newServer(s *simulator.Service) (srv *simulator.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return s.NewServer(), nil
}

// URL is the SDK endpoint, https://host:port/sdk, with no credentials.
func (v *VCenter) URL() *url.URL {
	u := *v.server.URL
	u.User = nil
	return &u
}

// Username and Password are the credentials the vCenter accepts.
func (v *VCenter) Username() string { return v.cfg.Username }
func (v *VCenter) Password() string { return v.cfg.Password }

// Thumbprint is the SHA-1 thumbprint of the server certificate as govc
// shows it (uppercase hex pairs joined by colons).
func (v *VCenter) Thumbprint() string { return soap.ThumbprintSHA1(v.cert) }

// CertFile is a PEM file holding the server certificate; it is
// self-signed, so clients trust it as their CA file.
func (v *VCenter) CertFile() string { return filepath.Join(v.dir, "vcenter.pem") }

// CertPEM is the content of CertFile.
func (v *VCenter) CertPEM() []byte { return v.certPEM }

// Inventory describes what Start seeded.
func (v *VCenter) Inventory() Inventory { return v.inv }

// Faults is the simulator's fault injector. Rules apply to every SOAP
// call, including the lab's own (WaitForUpdatesEx and RetrieveProperties
// of the watcher, ReconfigVM_Task of SetGuestIP): name methods and
// objects narrowly.
func (v *VCenter) Faults() *simulator.FaultInjector { return v.model.Service.FaultInjector() }

// Client returns a new client logged in over HTTPS that verifies the
// server certificate against CertFile. The caller logs it out.
func (v *VCenter) Client(ctx context.Context) (*govmomi.Client, error) {
	sc := soap.NewClient(v.URL(), false)
	if err := sc.SetRootCAs(v.CertFile()); err != nil {
		return nil, fmt.Errorf("trust vcenter certificate %s: %w", v.CertFile(), err)
	}
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("connect to vcenter %s: %w", v.URL(), err)
	}
	c := &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}
	if err := c.Login(ctx, url.UserPassword(v.cfg.Username, v.cfg.Password)); err != nil {
		return nil, fmt.Errorf("log in to vcenter %s as %s: %w", v.URL(), v.cfg.Username, err)
	}
	return c, nil
}

// SetGuestIP publishes ip as the VM's guest IP (guest.ipAddress and
// guest.net[0]), as VMware Tools would; an empty ip clears it.
func (v *VCenter) SetGuestIP(ctx context.Context, ref types.ManagedObjectReference, ip string) error {
	if err := setGuestIP(ctx, v.client.Client, ref, ip); err != nil {
		return fmt.Errorf("set guest ip of %s: %w", ref.Value, err)
	}
	return nil
}

// Close stops the watcher and the server and removes the files Start
// wrote. It is safe to call more than once.
func (v *VCenter) Close() {
	v.closed.Do(func() {
		if v.cancel != nil {
			v.cancel()
			<-v.watchErr
		}
		if v.client != nil {
			_ = v.client.Logout(context.Background()) // the server is going away anyway
		}
		if v.server != nil {
			v.server.Close()
		}
		if v.model != nil && v.model.Service != nil {
			v.model.Remove()
		}
		if v.dir != "" {
			_ = os.RemoveAll(v.dir)
		}
	})
}

func (v *VCenter) newCertificate() (tls.Certificate, error) {
	cert, certPEM, err := SelfSigned("vcenter.lab.local", v.cfg.Listen)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create vcenter certificate: %w", err)
	}
	v.cert, v.certPEM = cert.Leaf, certPEM
	if err := os.WriteFile(v.CertFile(), certPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("write vcenter certificate: %w", err)
	}
	return cert, nil
}

var errNoVM = errors.New("vm not found")
