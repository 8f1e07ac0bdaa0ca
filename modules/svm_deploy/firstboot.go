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
		// Checked before splitting: strings.Fields would quietly turn a
		// line break into a separator, and the SVM would see two commands.
		if strings.ContainsAny(line, "\r\n") {
			return nil, fmt.Errorf("first_boot command %d holds a line break: give one command per list item", i+1)
		}
		args := strings.Fields(line)
		if len(args) == 0 {
			return nil, fmt.Errorf("first_boot command %d is empty", i+1)
		}
		if args[0] == "passwd" {
			// Its arguments are not echoed: someone may have put the password there.
			return nil, fmt.Errorf("first_boot command %d (passwd) is refused: passwd reads the new password from standard input, "+
				"which halts the SVM's first boot (vendor); set passwords with ksvla.lightagent.svm_klconfig after deployment", i+1)
		}
		cmd, err := klconfig.Raw(args...)
		if err == nil {
			line, err = cmd.Line()
		}
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
