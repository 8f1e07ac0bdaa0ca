package svmdeploy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ksvla/lightagent/internal/klconfig"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// firstBootKey is the extraConfig key of the n-th (1-based) first startup
// command: guestinfo.klfirstboot.cmd1, cmd2, ... (klconfig.md §3).
//
// Lab assumption (the vendor text does not say, NOT FOUND): the value is
// the bare command line, not the KL_CMDn="..." form of other hypervisors.
func firstBootKey(n int) string { return vsphere.FirstBootPrefix + "cmd" + strconv.Itoa(n) }

// firstBootCommands checks the first_boot lines and returns them
// normalised (single spaces), so what is stored and compared is what the
// SVM runs. Each line must pass the klconfig client's argument rules;
// passwd is refused because it halts the boot (vendor).
func firstBootCommands(lines []string) ([]string, error) {
	out := make([]string, 0, len(lines))
	for i, line := range lines {
		// Checked first, and its arguments never echoed: someone may have
		// put the password there, and the argument checks quote values.
		if f := strings.Fields(line); len(f) > 0 && f[0] == "passwd" {
			return nil, fmt.Errorf("first_boot command %d (passwd) is refused: passwd reads the new password from standard input, "+
				"which halts the SVM's first boot (vendor); set passwords with ksvla.lightagent.svm_klconfig after deployment", i+1)
		}
		cmd, err := klconfig.ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("first_boot command %d: %w", i+1, err)
		}
		line, err = cmd.Line()
		if err != nil {
			return nil, fmt.Errorf("first_boot command %d: %w", i+1, err)
		}
		out = append(out, line)
	}
	return out, nil
}

// firstBootConfig maps commands to their extraConfig keys.
func firstBootConfig(cmds []string) map[string]string {
	if len(cmds) == 0 {
		return nil
	}
	ec := make(map[string]string, len(cmds))
	for i, c := range cmds {
		ec[firstBootKey(i+1)] = c
	}
	return ec
}

// firstBootList reads guestinfo.klfirstboot.cmdN values back in N order;
// keys that are not cmdN are ignored.
func firstBootList(ec map[string]string) []string {
	var out []string
	for n := 1; ; n++ {
		v, ok := ec[firstBootKey(n)]
		if !ok {
			return out
		}
		out = append(out, v)
	}
}
