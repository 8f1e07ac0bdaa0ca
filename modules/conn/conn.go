// Package conn holds what connects a module run to the outside: the
// connection options shared by the modules, written once and merged into
// each module's spec (community.vmware's base_argument_spec() + update,
// govc's embedded ClientFlag), and Sessions, the one holder through which
// a run opens its connections (vCenter, KSC, the SVM's SSH) and the
// runtime closes them.
package conn

import (
	"context"
	"fmt"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/ksc"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// Environment variables read when a connection option is not set, named
// once so specs, docs and error messages agree.
const (
	EnvVMwareHost          = "VMWARE_HOST"
	EnvVMwareUser          = "VMWARE_USER"
	EnvVMwarePassword      = "VMWARE_PASSWORD"
	EnvVMwarePasswordFile  = "VMWARE_PASSWORD_FILE"
	EnvVMwarePort          = "VMWARE_PORT"
	EnvVMwareValidateCerts = "VMWARE_VALIDATE_CERTS"
	EnvVMwareCAFile        = "VMWARE_CA_FILE"
	EnvVMwareThumbprint    = "VMWARE_THUMBPRINT"

	EnvKSCURL           = "KSC_URL"
	EnvKSCUsername      = "KSC_USERNAME"
	EnvKSCPassword      = "KSC_PASSWORD"
	EnvKSCPasswordFile  = "KSC_PASSWORD_FILE"
	EnvKSCInternalUser  = "KSC_INTERNAL_USER"
	EnvKSCVServer       = "KSC_VSERVER"
	EnvKSCCAFile        = "KSC_CA_FILE"
	EnvKSCFingerprint   = "KSC_FINGERPRINT"
	EnvKSCValidateCerts = "KSC_VALIDATE_CERTS"
)

// VCenterSpec is the vCenter connection spec.
func VCenterSpec() ansible.Spec {
	return ansible.Spec{Options: []ansible.Option{
		{Name: "hostname", Type: ansible.TypeStr, EnvFallback: []string{EnvVMwareHost},
			Description: []string{"The vCenter Server (or ESXi) host name or IP address."}},
		{Name: "username", Type: ansible.TypeStr, Aliases: []string{"user", "admin"}, EnvFallback: []string{EnvVMwareUser},
			Description: []string{"The user name for vCenter."}},
		{Name: "password", Type: ansible.TypeStr, Aliases: []string{"pass", "pwd"}, NoLog: true, EnvFallback: []string{EnvVMwarePassword}, EnvFileFallback: []string{EnvVMwarePasswordFile},
			Description: []string{"The password of O(username). Never shown in results, errors or logs."}},
		{Name: "port", Type: ansible.TypeInt, Default: 443, EnvFallback: []string{EnvVMwarePort}, Range: ansible.PortRange,
			Description: []string{"The vCenter HTTPS port."}},
		{Name: "validate_certs", Type: ansible.TypeBool, Default: true, EnvFallback: []string{EnvVMwareValidateCerts},
			Description: []string{"Verify vCenter's TLS certificate (against the system roots and O(ca_file)) or its O(thumbprint).",
				"Set to V(false) only for labs; a pinned O(thumbprint) is the safe way to trust a self-signed certificate."}},
		{Name: "ca_file", Type: ansible.TypePath, EnvFallback: []string{EnvVMwareCAFile}, Check: ansible.CheckRegularFile,
			Description: []string{"A PEM file of certificate authorities to trust in addition to the system ones."}},
		{Name: "thumbprint", Type: ansible.TypeStr, EnvFallback: []string{EnvVMwareThumbprint},
			Description: []string{"The expected SHA-1 (as govc shows it) or SHA-256 fingerprint of vCenter's certificate (hex pairs with or without colons); when set, only that certificate is accepted."}},
	}, Insecure: []ansible.Insecure{{Option: "validate_certs", Value: false, Unless: []string{"thumbprint"}, When: []string{"hostname"},
		Msg: "vCenter's TLS certificate is not verified, so the vCenter password goes to whoever answers; set ca_file, or thumbprint to pin the certificate"}},
	}
}

// KSCSpec is the Kaspersky Security Center connection spec.
func KSCSpec() ansible.Spec {
	return ansible.Spec{Options: []ansible.Option{
		{Name: "ksc_url", Type: ansible.TypeStr, EnvFallback: []string{EnvKSCURL}, URLCredentials: true,
			Description: []string{"The KSC Administration Server OpenAPI URL, e.g. V(https://ksc.example.com:13299)."}},
		{Name: "ksc_username", Type: ansible.TypeStr, EnvFallback: []string{EnvKSCUsername},
			Description: []string{"The KSC user name."}},
		{Name: "ksc_password", Type: ansible.TypeStr, NoLog: true, EnvFallback: []string{EnvKSCPassword}, EnvFileFallback: []string{EnvKSCPasswordFile},
			Description: []string{"The password of O(ksc_username). Never shown in results, errors or logs."}},
		{Name: "ksc_internal_user", Type: ansible.TypeBool, Default: true, EnvFallback: []string{EnvKSCInternalUser},
			Description: []string{"Whether O(ksc_username) is a KSC internal user (V(true)) or an OS/domain user (V(false))."}},
		{Name: "ksc_vserver", Type: ansible.TypeStr, EnvFallback: []string{EnvKSCVServer},
			Description: []string{"The virtual Administration Server to log in to (multitenancy); empty for the main server."}},
		{Name: "ksc_ca_file", Type: ansible.TypePath, EnvFallback: []string{EnvKSCCAFile}, Check: ansible.CheckRegularFile,
			Description: []string{"The Administration Server certificate (klserver.cer, PEM or DER) or a CA bundle to trust."}},
		{Name: "ksc_fingerprint", Type: ansible.TypeStr, EnvFallback: []string{EnvKSCFingerprint},
			Description: []string{"The SHA-256 fingerprint of the Administration Server certificate; when set, only that certificate is accepted."}},
		{Name: "ksc_validate_certs", Type: ansible.TypeBool, Default: true, EnvFallback: []string{EnvKSCValidateCerts},
			Description: []string{"Verify the Administration Server certificate. Set to V(false) only for labs."}},
	}, Insecure: []ansible.Insecure{{Option: "ksc_validate_certs", Value: false, Unless: []string{"ksc_fingerprint"}, When: []string{"ksc_url"},
		Msg: "the Administration Server's TLS certificate is not verified, so the KSC password goes to whoever answers; set ksc_ca_file, or ksc_fingerprint to pin the certificate"}},
	}
}

// missing reports a connection option that is neither given nor in the
// environment, naming both ways to fix it (connect_to_api does the same).
func missing(option, env string) error {
	return fmt.Errorf("%s is required: set the %s option or export %s=...", option, option, env)
}

// VCenterOptions are the decoded vCenter connection options; modules embed
// it in their Options struct.
type VCenterOptions struct {
	Hostname      string `json:"hostname"`
	Username      string `json:"username"`
	Password      string `json:"password" ansible:"no_log"`
	Port          int    `json:"port"`
	ValidateCerts bool   `json:"validate_certs"`
	CAFile        string `json:"ca_file"`
	Thumbprint    string `json:"thumbprint"`
}

// Login checks that the options say how to log in and returns the vSphere
// client's login parameters.
func (o VCenterOptions) Login() (vsphere.Conn, error) {
	switch {
	case o.Hostname == "":
		return vsphere.Conn{}, missing("hostname", EnvVMwareHost)
	case o.Username == "":
		return vsphere.Conn{}, missing("username", EnvVMwareUser)
	case o.Password == "":
		return vsphere.Conn{}, missing("password", EnvVMwarePassword)
	}
	return vsphere.Conn{
		Hostname: o.Hostname, Port: o.Port, Username: o.Username, Password: o.Password,
		ValidateCerts: o.ValidateCerts, CAFile: o.CAFile, Thumbprint: o.Thumbprint,
	}, nil
}

// KSCOptions are the decoded KSC connection options.
type KSCOptions struct {
	URL           string `json:"ksc_url"`
	Username      string `json:"ksc_username"`
	Password      string `json:"ksc_password" ansible:"no_log"`
	InternalUser  bool   `json:"ksc_internal_user"`
	VServer       string `json:"ksc_vserver"`
	CAFile        string `json:"ksc_ca_file"`
	Fingerprint   string `json:"ksc_fingerprint"`
	ValidateCerts bool   `json:"ksc_validate_certs"`
	// PageSize is the rows per page of KSC queries, for a module that
	// offers it as an option of its own; 0 is the client's default.
	PageSize int `json:"-"`
}

// Given reports whether any KSC connection option was set, for modules
// where KSC is optional.
func (o KSCOptions) Given() bool { return o.URL != "" }

// Config checks that the connection can be made and builds the client's
// config.
func (o KSCOptions) Config() (ksc.Config, error) {
	switch {
	case o.URL == "":
		return ksc.Config{}, missing("ksc_url", EnvKSCURL)
	case o.Username == "":
		return ksc.Config{}, missing("ksc_username", EnvKSCUsername)
	case o.Password == "":
		return ksc.Config{}, missing("ksc_password", EnvKSCPassword)
	}
	return ksc.Config{
		URL: o.URL, Username: o.Username, Password: o.Password, Internal: o.InternalUser,
		VServer: o.VServer, CAFile: o.CAFile, Fingerprint: o.Fingerprint, ValidateCerts: o.ValidateCerts,
		PageSize: o.PageSize,
	}, nil
}

// connect logs in to vCenter with the options; Sessions.VCenter is the
// one caller, so every login is closed with the run.
func (o VCenterOptions) connect(ctx context.Context) (*vsphere.Session, error) {
	c, err := o.Login()
	if err != nil {
		return nil, err
	}
	return vsphere.Connect(ctx, c)
}

// client builds the KSC client of the options; it logs in on first use.
// Sessions.KSC is the one caller, so every login is closed with the run.
func (o KSCOptions) client() (*ksc.Client, error) {
	cfg, err := o.Config()
	if err != nil {
		return nil, err
	}
	return ksc.New(cfg)
}
