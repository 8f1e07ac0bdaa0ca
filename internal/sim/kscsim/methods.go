package kscsim

import (
	"slices"
	"sort"
	"strings"
	"time"
)

type method func(s *Server, sess string, a params) (params, *pxgError)

// methods is the table of simulated OpenAPI methods.
var methods = map[string]method{
	"Session.Ping":                func(*Server, string, params) (params, *pxgError) { return params{}, nil },
	"Session.EndSession":          (*Server).mEndSession,
	"HostGroup.FindHosts":         (*Server).mFindHosts,
	"HostGroup.FindGroups":        (*Server).mFindGroups,
	"ChunkAccessor.GetItemsCount": (*Server).mGetItemsCount,
	"ChunkAccessor.GetItemsChunk": (*Server).mGetItemsChunk,
	"ChunkAccessor.Release":       (*Server).mRelease,
	"HostGroup.GetHostInfo":       (*Server).mGetHostInfo,
	"HostGroup.GetHostProducts":   (*Server).mGetHostProducts,
	"HostGroup.AddHost":           (*Server).mAddHost,
	"HostGroup.RemoveHost":        (*Server).mRemoveHost,
	"HostGroup.RemoveHosts":       (*Server).mRemoveHosts,
	"HostGroup.MoveHostsToGroup":  (*Server).mMoveHostsToGroup,
	"HostGroup.GroupIdGroups":     func(*Server, string, params) (params, *pxgError) { return ret(int64(groupGroups)), nil },
	"HostGroup.GroupIdUnassigned": func(*Server, string, params) (params, *pxgError) { return ret(int64(groupUnassigned)), nil },
	"HostGroup.GroupIdSuper":      func(*Server, string, params) (params, *pxgError) { return ret(int64(groupSuper)), nil },
	"HostGroup.GetGroupInfoEx":    (*Server).mGetGroupInfoEx,
	"HostGroup.GetGroupInfo":      (*Server).mGetGroupInfoEx,
	"HostGroup.UpdateGroup":       (*Server).mUpdateGroup,
	"HostGroup.AddGroup":          (*Server).mAddGroup,
	"HostGroup.GetStaticInfo":     (*Server).mGetStaticInfo,
	"Tasks.ResetTasksIterator":    (*Server).mResetTasksIterator,
	"Tasks.GetNextTask":           (*Server).mGetNextTask,
	"Tasks.ReleaseTasksIterator":  (*Server).mReleaseTasksIterator,
	"Tasks.GetTask":               (*Server).mGetTask,
	"Tasks.GetTaskData":           (*Server).mGetTask,
	"Tasks.RunTask":               (*Server).mRunTask,
	"Tasks.GetTaskStatistics":     (*Server).mGetTaskStatistics,
	"Tasks.GetAllTasksOfHost":     (*Server).mGetAllTasksOfHost,

	"Tasks.ResetHostIteratorForTaskStatusEx": (*Server).mResetHostIteratorForTaskStatusEx,
	"Tasks.GetNextHostStatus":                (*Server).mGetNextHostStatus,
	"Tasks.ReleaseHostStatusIterator":        (*Server).mReleaseHostStatusIterator,
}

func ret(v any) params { return params{"PxgRetVal": v} }

func (s *Server) notFound(what string) *pxgError {
	return &pxgError{Code: s.cfg.NotFoundCode, Message: "object not found: " + what}
}

// dispatch runs one method under the store lock, after KSC's automatic
// clean-up of inactive hosts.
func (s *Server) dispatch(sess, name string, a params) (params, *pxgError) {
	m, ok := methods[name]
	if !ok || slices.Contains(s.cfg.MissingMethods, name) {
		return nil, &pxgError{Code: CodeNotImplemented, Message: "unknown method " + name}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked()
	return m(s, sess, a)
}

func (s *Server) mEndSession(sess string, _ params) (params, *pxgError) {
	s.endSessionLocked(sess)
	return params{}, nil
}

// maxLifeTime is the documented upper bound of lMaxLifeTime.
const maxLifeTime = 7200

// defaultLifeTime is used when lMaxLifeTime is missing or 0; the doc does
// not say what a real server does then (lab's assumption).
const defaultLifeTime = 100

func (s *Server) find(sess string, a params, sc schema, recs []record, hidden map[string]bool) (params, *pxgError) {
	filter, _ := a["wstrFilter"].(string)
	fields, perr := argStrings(a, "vecFieldsToReturn", false)
	if perr != nil {
		return nil, perr
	}
	life, perr := argInt(a, "lMaxLifeTime", 0, false)
	if perr != nil {
		return nil, perr
	}
	if life < 0 || life > maxLifeTime {
		return nil, badParam("lMaxLifeTime %d out of range 0..%d", life, maxLifeTime)
	}
	if life == 0 {
		life = defaultLifeTime
	}
	order, perr := orderFields(a)
	if perr != nil {
		return nil, perr
	}
	n, err := parseFilter(filter, sc)
	if err != nil {
		return nil, badParam("%v", err)
	}
	now := s.clock.Now()
	var hits []record
	for _, r := range recs {
		if n.match(r, now) {
			hits = append(hits, r)
		}
	}
	sortRecords(hits, order)
	rows := make([]any, len(hits))
	for i, r := range hits {
		row := params{}
		for _, f := range fields {
			if v, ok := r[f]; ok && !hidden[f] {
				row[f] = v
			}
		}
		rows[i] = row
	}
	id := newGUID()
	s.accessors[id] = &accessor{session: sess, rows: rows, expires: now.Add(time.Duration(life) * time.Second)}
	return params{"PxgRetVal": int64(len(rows)), "strAccessor": id}, nil
}

type orderField struct {
	name string
	asc  bool
}

func orderFields(a params) ([]orderField, *pxgError) {
	v, ok := a["vecFieldsToOrder"]
	if !ok || v == nil {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, badParam("vecFieldsToOrder is %T, want array", v)
	}
	var out []orderField
	for i, e := range arr {
		p, ok := e.(params)
		if !ok {
			return nil, badParam("vecFieldsToOrder[%d] is %T, want params", i, e)
		}
		name, _ := p["Name"].(string)
		if name == "" {
			return nil, badParam("vecFieldsToOrder[%d] has no Name", i)
		}
		asc, _ := p["Asc"].(bool)
		out = append(out, orderField{name, asc})
	}
	return out, nil
}

// sortRecords orders by the requested fields, then by the first string
// id-like attribute so results are deterministic (real KSC gives no order
// without vecFieldsToOrder).
func sortRecords(rs []record, order []orderField) {
	sort.SliceStable(rs, func(i, j int) bool {
		for _, o := range order {
			c := compareValues(rs[i][o.name], rs[j][o.name])
			if c != 0 {
				return (c < 0) == o.asc
			}
		}
		for _, k := range []string{"KLHST_WKS_HOSTNAME", "id"} {
			if c := compareValues(rs[i][k], rs[j][k]); c != 0 {
				return c < 0
			}
		}
		return false
	})
}

// compareValues orders typed values; a missing value sorts last.
func compareValues(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	num := func(v any) (int64, bool) {
		switch x := v.(type) {
		case int64:
			return x, true
		case long:
			return int64(x), true
		case bool:
			if x {
				return 1, true
			}
			return 0, true
		}
		return 0, false
	}
	if x, ok := num(a); ok {
		if y, ok := num(b); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	if x, ok := a.(time.Time); ok {
		if y, ok := b.(time.Time); ok {
			return x.Compare(y)
		}
	}
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			return strings.Compare(strings.ToLower(x), strings.ToLower(y))
		}
	}
	return 0
}

func (s *Server) mFindHosts(sess string, a params) (params, *pxgError) {
	recs := make([]record, 0, len(s.hosts))
	for _, h := range s.hosts {
		recs = append(recs, s.hostRecord(h))
	}
	return s.find(sess, a, hostSchema, recs, searchOnly)
}

func (s *Server) mFindGroups(sess string, a params) (params, *pxgError) {
	recs := make([]record, 0, len(s.groups))
	for _, g := range s.groups {
		recs = append(recs, s.groupRecord(g))
	}
	return s.find(sess, a, groupSchema, recs, nil)
}

// accessorFor finds a live accessor of this session; an expired one is
// destroyed on the way, as its lifetime (lab clock) is over.
func (s *Server) accessorFor(sess string, a params) (string, *accessor, *pxgError) {
	return s.liveAccessor(s.accessors, sess, a, "strAccessor", "accessor")
}

// liveAccessor finds the live result set named by argument arg in m.
func (s *Server) liveAccessor(m map[string]*accessor, sess string, a params, arg, what string) (string, *accessor, *pxgError) {
	id, perr := argString(a, arg)
	if perr != nil {
		return "", nil, perr
	}
	acc, ok := m[id]
	if ok && s.clock.Now().After(acc.expires) {
		delete(m, id)
		ok = false
	}
	if !ok || acc.session != sess {
		return "", nil, s.notFound(what + " " + id)
	}
	return id, acc, nil
}

func (s *Server) mGetItemsCount(sess string, a params) (params, *pxgError) {
	_, acc, perr := s.accessorFor(sess, a)
	if perr != nil {
		return nil, perr
	}
	return ret(int64(len(acc.rows))), nil
}

func (s *Server) mGetItemsChunk(sess string, a params) (params, *pxgError) {
	_, acc, perr := s.accessorFor(sess, a)
	if perr != nil {
		return nil, perr
	}
	start, perr := argInt(a, "nStart", 0, true)
	if perr != nil {
		return nil, perr
	}
	count, perr := argInt(a, "nCount", 0, true)
	if perr != nil {
		return nil, perr
	}
	if start < 0 || count < 0 {
		return nil, badParam("nStart %d / nCount %d must not be negative", start, count)
	}
	n := int64(len(acc.rows))
	lo, hi := min(start, n), min(start+count, n)
	rows := append([]any{}, acc.rows[lo:hi]...)
	return params{"PxgRetVal": hi - lo, "pChunk": params{"KLCSP_ITERATOR_ARRAY": rows}}, nil
}

func (s *Server) mRelease(sess string, a params) (params, *pxgError) {
	id, _, perr := s.accessorFor(sess, a)
	if perr != nil {
		return nil, perr
	}
	delete(s.accessors, id)
	return params{}, nil
}

func (s *Server) hostArg(a params, name string) (*Host, *pxgError) {
	id, perr := argString(a, name)
	if perr != nil {
		return nil, perr
	}
	h, ok := s.hosts[id]
	if !ok {
		return nil, s.notFound("host " + id)
	}
	return h, nil
}

func (s *Server) mGetHostInfo(_ string, a params) (params, *pxgError) {
	h, perr := s.hostArg(a, "strHostName")
	if perr != nil {
		return nil, perr
	}
	fields, perr := argStrings(a, "pFields2Return", false)
	if perr != nil {
		return nil, perr
	}
	r := s.hostRecord(h)
	out := params{}
	for _, f := range fields {
		if v, ok := r[f]; ok && !searchOnly[f] {
			out[f] = v
		}
	}
	return ret(out), nil
}

// mGetHostProducts answers product key -> version key -> fields (reference
// 3.5). DisplayName and ProdVersion are omitted when empty, as real
// servers omit attributes they have no value for.
func (s *Server) mGetHostProducts(_ string, a params) (params, *pxgError) {
	h, perr := s.hostArg(a, "strHostName")
	if perr != nil {
		return nil, perr
	}
	out := params{}
	for _, p := range h.Products {
		vers, ok := out[p.Key].(params)
		if !ok {
			vers = params{}
			out[p.Key] = vers
		}
		f := params{"InstallTime": h.Created.UTC().Truncate(time.Second), "LastUpdateTime": h.Created.UTC().Truncate(time.Second)}
		if p.DisplayName != "" {
			f["DisplayName"] = p.DisplayName
		}
		if p.ProdVersion != "" {
			f["ProdVersion"] = p.ProdVersion
		}
		if p.Key != NagentProduct && !h.BasesTime.IsZero() {
			f["BaseDate"] = h.BasesTime.UTC().Truncate(time.Second)
		}
		vers[p.Version] = f
	}
	return ret(out), nil
}

func (s *Server) mAddHost(_ string, a params) (params, *pxgError) {
	info, perr := argParams(a, "pInfo")
	if perr != nil {
		return nil, perr
	}
	str := func(k string) string { v, _ := info[k].(string); return v }
	gid, perr := argInt(info, "KLHST_WKS_GROUPID", int64(groupUnassigned), false)
	if perr != nil {
		return nil, perr
	}
	if _, ok := s.groups[int(gid)]; !ok {
		return nil, s.notFound("group")
	}
	h := &Host{ID: newGUID(), DisplayName: str("KLHST_WKS_DN"), DNSName: str("KLHST_WKS_DNSNAME"),
		DNSDomain: str("KLHST_WKS_DNSDOMAIN"), WinHostName: str("KLHST_WKS_WINHOSTNAME"),
		GroupID: int(gid), Created: s.clock.Now()}
	s.hosts[h.ID] = h
	return ret(h.ID), nil
}

func (s *Server) mRemoveHost(_ string, a params) (params, *pxgError) {
	h, perr := s.hostArg(a, "strHostName")
	if perr != nil {
		return nil, perr
	}
	delete(s.hosts, h.ID)
	return params{}, nil
}

// mRemoveHosts follows the documented version drift (reference 3.6): KSC
// 13.2/15 delete everything when bForceDestroy is true; otherwise, and
// always on 15.1+, hosts in Unassigned (or below) are deleted and the
// others moved to Unassigned. Lab assumptions: unknown ids are skipped
// silently, and moved hosts land in Unassigned itself, not in a mirrored
// subgroup of it.
func (s *Server) mRemoveHosts(_ string, a params) (params, *pxgError) {
	ids, perr := argStrings(a, "pHostNames", true)
	if perr != nil {
		return nil, perr
	}
	force, perr := argBool(a, "bForceDestroy")
	if perr != nil {
		return nil, perr
	}
	if s.cfg.RemoveHostsForceIgnored {
		force = false
	}
	for _, id := range ids {
		h, ok := s.hosts[id]
		if !ok {
			continue
		}
		if force || s.inSubtree(h.GroupID, groupUnassigned) {
			delete(s.hosts, id)
			continue
		}
		h.GroupID = groupUnassigned
	}
	return params{}, nil
}

// mMoveHostsToGroup is all-or-nothing: an unknown group or host fails the
// call before anything moves (lab's assumption).
func (s *Server) mMoveHostsToGroup(_ string, a params) (params, *pxgError) {
	gid, perr := argInt(a, "nGroup", 0, true)
	if perr != nil {
		return nil, perr
	}
	if _, ok := s.groups[int(gid)]; !ok || gid == groupSuper {
		return nil, s.notFound("group")
	}
	ids, perr := argStrings(a, "pHostNames", true)
	if perr != nil {
		return nil, perr
	}
	for _, id := range ids {
		if _, ok := s.hosts[id]; !ok {
			return nil, s.notFound("host " + id)
		}
	}
	for _, id := range ids {
		s.hosts[id].GroupID = int(gid)
	}
	return params{}, nil
}

// maxGroupAttrs is the documented limit of pArrAttributes.
const maxGroupAttrs = 100

func (s *Server) mGetGroupInfoEx(_ string, a params) (params, *pxgError) {
	gid, perr := argInt(a, "nGroupId", 0, true)
	if perr != nil {
		return nil, perr
	}
	g, ok := s.groups[int(gid)]
	if !ok {
		return nil, s.notFound("group")
	}
	attrs, perr := argStrings(a, "pArrAttributes", false)
	if perr != nil {
		return nil, perr
	}
	if len(attrs) > maxGroupAttrs {
		return nil, badParam("pArrAttributes has %d entries, at most %d allowed", len(attrs), maxGroupAttrs)
	}
	r := s.groupRecord(g)
	if len(attrs) == 0 { // GetGroupInfo (deprecated) returns everything
		return ret(params(r)), nil
	}
	out := params{}
	for _, k := range attrs {
		if v, ok := r[k]; ok {
			out[k] = v
		}
	}
	return ret(out), nil
}

// mUpdateGroup changes the writable group attributes. Lab assumption:
// setting autoRemovePeriod or notifyPeriod without "KLGRP_HlfInherited "
// in the same call stops inheriting them, as the console does.
func (s *Server) mUpdateGroup(_ string, a params) (params, *pxgError) {
	gid, perr := argInt(a, "nGroup", 0, true)
	if perr != nil {
		return nil, perr
	}
	g, ok := s.groups[int(gid)]
	if !ok {
		return nil, s.notFound("group")
	}
	info, perr := argParams(a, "pInfo")
	if perr != nil {
		return nil, perr
	}
	next := *g
	if e := s.effective(g); g.inherited && e != nil {
		// Breaking inheritance starts from the values that applied so far.
		next.autoRemove, next.notify = e.autoRemove, e.notify
	}
	for k, v := range info {
		switch k {
		case "name":
			name, ok := v.(string)
			if !ok || name == "" {
				return nil, badParam("name must be a non-empty string")
			}
			next.name = name
		case "autoRemovePeriod", "notifyPeriod":
			n, perr := argInt(info, k, 0, true)
			if perr != nil || n < 0 {
				return nil, badParam("%s must be a non-negative int", k)
			}
			if k == "autoRemovePeriod" {
				next.autoRemove = int(n)
			} else {
				next.notify = int(n)
			}
			if _, ok := info["KLGRP_HlfInherited "]; !ok {
				next.inherited = false
			}
		case "KLGRP_HlfInherited ", "KLGRP_HlfForceChildren":
			b, ok := v.(bool)
			if !ok {
				return nil, badParam("%q must be a bool", k)
			}
			if k == "KLGRP_HlfForceChildren" {
				next.forceChildren = b
			} else {
				next.inherited = b
			}
		default:
			return nil, badParam("group attribute %q cannot be changed", k)
		}
	}
	next.updated = s.clock.Now()
	*g = next
	return params{}, nil
}

func (s *Server) mAddGroup(_ string, a params) (params, *pxgError) {
	info, perr := argParams(a, "pInfo")
	if perr != nil {
		return nil, perr
	}
	name, _ := info["name"].(string)
	parent, perr := argInt(info, "parentId", 0, true)
	if perr != nil || name == "" {
		return nil, badParam("pInfo needs name and parentId")
	}
	if _, ok := s.groups[int(parent)]; !ok {
		return nil, s.notFound("group")
	}
	return ret(int64(s.addGroupLocked(name, int(parent)))), nil
}

// mGetStaticInfo answers HostGroup.GetStaticInfo(pValues). Returned as int
// (the reference does not say whether the id is int or long).
func (s *Server) mGetStaticInfo(_ string, a params) (params, *pxgError) {
	keys, perr := argStrings(a, "pValues", false)
	if perr != nil {
		return nil, perr
	}
	id, _ := versionID(s.cfg.ServerVersion) // validated in Start
	all := params{
		"KLADMSRV_SERVER_VERSION_ID":    id,
		"KLADMSRV_PRODUCT_FULL_VERSION": s.cfg.ServerVersion,
		"KLADMSRV_PRODUCT_NAME":         "1093",
		"KLADMSRV_PRODUCT_VERSION":      "1.0.0.0",
		"KLADMSRV_VSID":                 int64(0),
	}
	if len(keys) == 0 {
		return ret(all), nil
	}
	out := params{}
	for _, k := range keys {
		if v, ok := all[k]; ok {
			out[k] = v
		}
	}
	return ret(out), nil
}
