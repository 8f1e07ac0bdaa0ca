package kscsim

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"
)

// Product is one application registered on a host, as GetHostProducts
// reports it: Key is the product name key (e.g. "1103", "KES"), Version the
// registration version key (e.g. "1.0.0.0"), ProdVersion the full build.
type Product struct {
	Key, Version, DisplayName, ProdVersion string
}

// Host is a host record in the simulated KSC.
type Host struct {
	ID                                                     string // KLHST_WKS_HOSTNAME; a GUID is generated if empty
	DisplayName, DNSName, DNSDomain, FQDN, WinHostName, IP string
	GroupID                                                int // 0 on input means Unassigned; Host() reports the real id
	Status                                                 int // KLHST_WKS_STATUS bits
	LastVisible, Created                                   time.Time
	Products                                               []Product
	OSName                                                 string // KLHST_WKS_OS_NAME
	// StatusMask is KLHST_WKS_STATUS_MASK: the reasons for the host's
	// status (StatusMaskLicence: the application has no valid licence).
	StatusMask int
	BasesTime  time.Time // KLHST_WKS_RTP_AV_BASES_TIME; zero = no databases
}

// StatusMaskLicence is bit 9 of KLHST_WKS_STATUS_MASK, "licence expired"
// (SDK HST/host_const.h, SMC_OLD_LICENSE). Lab assumption: KSC sets it for
// an application that was never activated.
const StatusMaskLicence = 0x200

// NagentProduct is the Network Agent's product key (KSC's table of
// KLHST_WKS_PRODUCT_NAME values: 1103; 1093 is the Administration Server).
const NagentProduct = "1103"

// Status bits of KLHST_WKS_STATUS (reference section 4).
const (
	StatusVisible     = 0x01
	StatusInGroup     = 0x02
	StatusNagentInst  = 0x04
	StatusNagentAlive = 0x08
	StatusProductInst = 0x10
)

// Fixed group ids of every simulated server. They are deliberately not the
// small numbers some installations show, so a client that hard-codes ids
// instead of asking (GroupIdGroups, ...) fails in the lab.
const (
	groupSuper      = 1
	groupGroups     = 2
	groupUnassigned = 4
)

type group struct {
	id, parent               int
	name                     string
	autoRemove, notify       int // days; 0 = never
	inherited, forceChildren bool
	created, updated         time.Time
}

type task struct {
	id, name string
	created  time.Time
	run      TargetFunc
	state    int // taskScheduled, taskRunning, taskOK, taskFailed
	// targets are the last run's devices; none for a task added with
	// AddTask, which counts as one target in the statistics.
	targets []*target
	starts  int // RunTask calls that started it
	percent int
	err     error
}

// TaskFunc is the work behind a simulated KSC task. It reports progress in
// percent and returns nil for success. ctx ends when the server closes.
type TaskFunc func(ctx context.Context, progress func(percent int)) error

// Task states, keyed like the GetTaskStatistics attributes ("1" not
// distributed, "2" running, "4" completed, "8" warning, "16" failed,
// "32" scheduled, "64" paused; KlAkOAPI task sample).
const (
	taskScheduled = 32
	taskRunning   = 2
	taskOK        = 4
	taskFailed    = 16
)

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// UpsertHost creates or replaces the host with h.ID (a GUID is generated
// when empty) and returns its id. Created defaults to now.
func (s *Server) UpsertHost(h Host) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.ID == "" {
		h.ID = newGUID()
	}
	if h.GroupID == 0 {
		h.GroupID = groupUnassigned
	}
	if _, ok := s.groups[h.GroupID]; !ok {
		h.GroupID = groupUnassigned
	}
	if h.Created.IsZero() {
		if old, ok := s.hosts[h.ID]; ok {
			h.Created = old.Created
		} else {
			h.Created = s.clock.Now()
		}
	}
	h.Products = append([]Product(nil), h.Products...)
	s.hosts[h.ID] = &h
	return h.ID
}

// Host returns a copy of the host record with the given id.
func (s *Server) Host(id string) (Host, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked()
	h, ok := s.hosts[id]
	if !ok {
		return Host{}, false
	}
	return copyHost(h), true
}

func copyHost(h *Host) Host {
	c := *h
	c.Products = append([]Product(nil), h.Products...)
	return c
}

// Hosts returns copies of all host records, ordered by id.
func (s *Server) Hosts() []Host {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked()
	out := make([]Host, 0, len(s.hosts))
	for _, h := range s.hosts {
		out = append(out, copyHost(h))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// FindByName returns the hosts whose display name is displayName.
func (s *Server) FindByName(displayName string) []Host {
	var out []Host
	for _, h := range s.Hosts() {
		if h.DisplayName == displayName {
			out = append(out, h)
		}
	}
	return out
}

// SetVisible sets or clears the "visible in network" status bit; visible
// also stamps LastVisible with the lab clock.
func (s *Server) SetVisible(id string, visible bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hosts[id]
	if !ok {
		return
	}
	if visible {
		h.Status |= StatusVisible
		h.LastVisible = s.clock.Now()
	} else {
		h.Status &^= StatusVisible
	}
}

// SetProducts replaces the host's product list.
func (s *Server) SetProducts(id string, p []Product) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.hosts[id]; ok {
		h.Products = append([]Product(nil), p...)
	}
}

// RemoveHostRecord deletes the host record, as if an administrator removed it.
func (s *Server) RemoveHostRecord(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hosts, id)
}

// AddGroup creates an administration group under parent (0 = the root
// "Managed devices" group) and returns its id. It inherits the parent's
// autoRemovePeriod and notifyPeriod.
func (s *Server) AddGroup(name string, parent int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addGroupLocked(name, parent)
}

func (s *Server) addGroupLocked(name string, parent int) int {
	if _, ok := s.groups[parent]; !ok || parent == 0 {
		parent = groupGroups
	}
	id := s.nextGroup
	s.nextGroup++
	now := s.clock.Now()
	s.groups[id] = &group{id: id, parent: parent, name: name, inherited: true, created: now, updated: now}
	return id
}

// GroupIDGroups, GroupIDUnassigned and GroupIDSuper return the fixed
// group ids of this server, for lab wiring (clients must ask over the API).
func (s *Server) GroupIDGroups() int     { return groupGroups }
func (s *Server) GroupIDUnassigned() int { return groupUnassigned }
func (s *Server) GroupIDSuper() int      { return groupSuper }

// SetAutoRemovePeriod sets a group's autoRemovePeriod in days (0 = never)
// and stops it inheriting the parent's value.
func (s *Server) SetAutoRemovePeriod(groupID, days int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.groups[groupID]; ok {
		if e := s.effective(g); g.inherited && e != nil {
			g.notify = e.notify
		}
		g.autoRemove, g.inherited = days, false
	}
}

// AddTask registers an existing task (as if created in the console) that
// automation finds by display name and starts; it returns the task id.
// Its statistics count the task itself as its one target (a test
// simplification); the lab's tasks use AddTargetTask.
func (s *Server) AddTask(displayName string, run TaskFunc) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var work TargetFunc
	if run != nil {
		work = func(ctx context.Context, r *Run) error { return run(ctx, r.Progress) }
	}
	return s.addTaskLocked(displayName, work)
}

func (s *Server) addTaskLocked(displayName string, run TargetFunc) string {
	id := strconv.Itoa(s.nextTask)
	s.nextTask++
	s.tasks[id] = &task{id: id, name: displayName, created: s.clock.Now(), run: run, state: taskScheduled}
	s.taskOrder = append(s.taskOrder, id)
	return id
}

// TaskRuns returns how many times each task (by display name) was
// started; RunTask on a running task does not count.
func (s *Server) TaskRuns() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, t := range s.tasks {
		out[t.name] += t.starts
	}
	return out
}

// Calls returns how many times each method was called (login included as
// "login"), for benchmarks that count round trips.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// ResetCalls zeroes the call counters.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
}

// effective follows inheritance up the group tree to the group whose
// autoRemovePeriod and notifyPeriod apply (nil if none).
func (s *Server) effective(g *group) *group {
	for i := 0; g != nil && g.inherited && i < 64; i++ {
		g = s.groups[g.parent]
	}
	return g
}

func (s *Server) effectiveAutoRemove(g *group) int {
	if e := s.effective(g); e != nil {
		return e.autoRemove
	}
	return 0
}

// purgeLocked is KSC's automatic deletion of inactive hosts: a host whose
// last visibility (or creation, if never seen) is older than its group's
// autoRemovePeriod days disappears. Run on every call and store read
// instead of a background job, so the manual clock needs no hooks.
func (s *Server) purgeLocked() {
	now := s.clock.Now()
	for id, h := range s.hosts {
		days := s.effectiveAutoRemove(s.groups[h.GroupID])
		if days <= 0 {
			continue
		}
		last := h.LastVisible
		if last.IsZero() {
			last = h.Created
		}
		if now.Sub(last) > time.Duration(days)*24*time.Hour {
			delete(s.hosts, id)
		}
	}
}

// inSubtree reports whether group id is root or below it.
func (s *Server) inSubtree(id, root int) bool {
	for i := 0; i < 64; i++ {
		if id == root {
			return true
		}
		g, ok := s.groups[id]
		if !ok || g.parent == 0 {
			return false
		}
		id = g.parent
	}
	return false
}

func (s *Server) ancestors(id int) multi {
	var out multi
	for i := 0; i < 64; i++ {
		out = append(out, int64(id))
		g, ok := s.groups[id]
		if !ok || g.parent == 0 {
			break
		}
		id = g.parent
	}
	return out
}

// hostSchema lists the host attributes filters may name.
var hostSchema = schema{
	"KLHST_WKS_HOSTNAME": kString, "KLHST_WKS_DN": kString, "KLHST_WKS_WINHOSTNAME": kString,
	"KLHST_WKS_WINDOMAIN": kString, "KLHST_WKS_DNSNAME": kString, "KLHST_WKS_DNSDOMAIN": kString,
	"KLHST_WKS_FQDN": kString, "KLHST_WKS_GROUPID": kInt, "KLHST_WKS_GROUPID_GP": kInt,
	"KLHST_WKS_FROM_UNASSIGNED": kInt, "KLHST_WKS_STATUS": kInt, "KLHST_WKS_LAST_VISIBLE": kTime,
	"KLHST_WKS_CREATED": kTime, "KLHST_WKS_IP_LONG": kInt, "KLHST_WKS_PRODUCT_NAME": kString,
	"KLHST_WKS_PRODUCT_VERSION": kString, "KLHST_WKS_PRODUCT_DISPLAY_VERSION": kString,
	"KLHST_WKS_NAG_VERSION": kString, "KLHST_WKS_RTP_AV_VERSION": kString, "name": kString,
	"KLHST_WKS_OS_NAME": kString, "KLHST_WKS_STATUS_MASK": kInt, "KLHST_WKS_RTP_AV_BASES_TIME": kTime,
}

// searchOnly attributes can be filtered on but are never returned.
var searchOnly = map[string]bool{
	"KLHST_WKS_GROUPID_GP": true, "KLHST_WKS_FROM_UNASSIGNED": true, "KLHST_WKS_PRODUCT_NAME": true,
	"KLHST_WKS_PRODUCT_VERSION": true, "KLHST_WKS_PRODUCT_DISPLAY_VERSION": true,
}

// hostRecord renders a host as attribute -> typed value, omitting the
// attributes it has no value for.
func (s *Server) hostRecord(h *Host) record {
	r := record{
		"KLHST_WKS_HOSTNAME":        h.ID,
		"KLHST_WKS_GROUPID":         int64(h.GroupID),
		"KLHST_WKS_STATUS":          int64(h.Status),
		"KLHST_WKS_STATUS_MASK":     int64(h.StatusMask),
		"KLHST_WKS_GROUPID_GP":      s.ancestors(h.GroupID),
		"KLHST_WKS_FROM_UNASSIGNED": s.inSubtree(h.GroupID, groupUnassigned),
	}
	for k, v := range map[string]string{"KLHST_WKS_DN": h.DisplayName, "KLHST_WKS_DNSNAME": h.DNSName,
		"KLHST_WKS_DNSDOMAIN": h.DNSDomain, "KLHST_WKS_FQDN": h.FQDN, "KLHST_WKS_WINHOSTNAME": h.WinHostName} {
		if v != "" {
			r[k] = v
		}
	}
	if !h.LastVisible.IsZero() {
		r["KLHST_WKS_LAST_VISIBLE"] = h.LastVisible.UTC().Truncate(time.Second)
	}
	if !h.Created.IsZero() {
		r["KLHST_WKS_CREATED"] = h.Created.UTC().Truncate(time.Second)
	}
	if !h.BasesTime.IsZero() {
		r["KLHST_WKS_RTP_AV_BASES_TIME"] = h.BasesTime.UTC().Truncate(time.Second)
	}
	if h.OSName != "" {
		r["KLHST_WKS_OS_NAME"] = h.OSName
	}
	if ip := net.ParseIP(h.IP).To4(); ip != nil {
		r["KLHST_WKS_IP_LONG"] = long(int64(ip[0])<<24 | int64(ip[1])<<16 | int64(ip[2])<<8 | int64(ip[3]))
	}
	if g, ok := s.groups[h.GroupID]; ok {
		r["name"] = g.name
	}
	var names, versions, disp multi
	for _, p := range h.Products {
		names, versions = append(names, p.Key), append(versions, p.Version)
		if p.ProdVersion != "" {
			disp = append(disp, p.ProdVersion)
		}
		if p.Key == NagentProduct && p.ProdVersion != "" {
			r["KLHST_WKS_NAG_VERSION"] = p.ProdVersion
		}
		// The security application of the host (not the Network Agent or
		// the Administration Server) reports its version here, as KSC's
		// "security application version" attribute does.
		if _, set := r["KLHST_WKS_RTP_AV_VERSION"]; !set && p.Key != NagentProduct && p.Key != "1093" {
			v := p.ProdVersion
			if v == "" {
				v = p.Version
			}
			r["KLHST_WKS_RTP_AV_VERSION"] = v
		}
	}
	r["KLHST_WKS_PRODUCT_NAME"], r["KLHST_WKS_PRODUCT_VERSION"], r["KLHST_WKS_PRODUCT_DISPLAY_VERSION"] = names, versions, disp
	return r
}

// groupSchema lists the group attributes FindGroups filters may name.
var groupSchema = schema{
	"id": kInt, "name": kString, "parentId": kInt, "autoRemovePeriod": kInt, "notifyPeriod": kInt,
	"creationDate": kTime, "lastUpdate": kTime, "hostsNum": kInt, "grp_full_name": kString,
}

func (s *Server) groupRecord(g *group) record {
	hosts := int64(0)
	for _, h := range s.hosts {
		if h.GroupID == g.id {
			hosts++
		}
	}
	full := g.name
	for p, i := s.groups[g.parent], 0; p != nil && i < 64; p, i = s.groups[p.parent], i+1 {
		full = p.name + "/" + full
	}
	var notify int64
	if e := s.effective(g); e != nil {
		notify = int64(e.notify)
	}
	return record{
		"id": int64(g.id), "name": g.name, "parentId": int64(g.parent),
		"autoRemovePeriod": int64(s.effectiveAutoRemove(g)), "notifyPeriod": notify,
		"KLGRP_HlfInherited ": g.inherited, "KLGRP_HlfForceChildren": g.forceChildren, "KLGRP_HlfForced": false,
		"creationDate": g.created.UTC().Truncate(time.Second), "lastUpdate": g.updated.UTC().Truncate(time.Second),
		"hostsNum": hosts, "grp_full_name": full,
	}
}
