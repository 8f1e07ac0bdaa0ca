package svm

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Pseudo-commands of the first startup script.
const (
	bootReset  = "RESET"  // delete boot_config_done after this run: run again at the next boot
	bootAlways = "ALWAYS" // run even though boot_config_done exists
	bootReport = "REPORT" // write command results to the log
)

// FirstBoot runs the first startup script (the values of guestinfo.klfirstboot.cmd1..N, in order)
// as the SVM does at power-on; call it before Start. It also remembers the commands: every later
// boot after `reboot` runs them again under the same rules, so the lab need not call it from the
// Rebooted hook.
//
// Rules (vendor): skipped when boot_config_done exists unless ALWAYS is among the commands; the
// marker is written after a run unless RESET is among them. A `passwd` command halts the boot (it
// waits for stdin forever): the SVM is powered on but never answers and no marker is written.
//
// Lab assumptions (NOT FOUND in the docs): each command's marker always goes to boot_config.log;
// REPORT adds the command's output lines as well. Values are bare commands, not KL_CMDn="..." forms.
func (s *SVM) FirstBoot(cmds []string) {
	s.mu.Lock()
	s.firstBootCmds = slices.Clone(cmds)
	after := s.firstBootLocked(cmds)
	_ = s.syncListenerLocked() // a halted boot closes the listener; nothing else can fail here
	s.mu.Unlock()
	for _, h := range after {
		h()
	}
}

func (s *SVM) bootLogf(format string, a ...any) {
	s.bootLog = append(s.bootLog, time.Now().UTC().Format(time.RFC3339)+" "+fmt.Sprintf(format, a...))
}

// firstBootLocked runs the script and returns the hook calls to make after unlocking.
func (s *SVM) firstBootLocked(cmds []string) []func() {
	s.bootFailed = false
	if len(cmds) == 0 {
		return nil
	}
	var always, reset, report bool
	for _, c := range cmds {
		switch strings.TrimSpace(c) {
		case bootAlways:
			always = true
		case bootReset:
			reset = true
		case bootReport:
			report = true
		}
	}
	if s.bootDone && !always {
		s.bootLogf("boot_config_done exists: %d commands skipped", len(cmds))
		return nil
	}
	s.bootLogf("boot_config: running %d commands", len(cmds))
	var after []func()
	for i, c := range cmds {
		c = strings.TrimSpace(c)
		if c == bootAlways || c == bootReset || c == bootReport {
			continue
		}
		args := strings.Fields(c)
		if len(args) > 0 && args[0] == "passwd" {
			s.bootLogf("cmd%d: %s: waiting for the new password on stdin: SVM start halted", i+1, c)
			s.bootFailed = true
			return after
		}
		r := &run{noIn: true}
		ok := s.execLocked(args, r)
		after = append(after, r.after...)
		if hook := s.cfg.Hooks.Command; hook != nil {
			after = append(after, func() { hook(s, c, ok) })
		}
		if report {
			for _, l := range r.lines[:len(r.lines)-1] {
				s.bootLogf("cmd%d: %s", i+1, l)
			}
		}
		s.bootLogf("cmd%d: %s: %s", i+1, c, r.lines[len(r.lines)-1])
	}
	if reset {
		s.bootDone = false
		s.bootLogf("boot_config: RESET: boot_config_done removed")
	} else {
		s.bootDone = true
		s.bootLogf("boot_config: done")
	}
	return after
}
