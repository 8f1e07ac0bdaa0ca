package ksc

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// lifeTime is lMaxLifeTime for result sets: long enough to page through
// big sets, well under the documented 7200 s limit.
const lifeTime = 600

// batch is the id-array size per call (the doc limits some arrays to 100).
const batch = 100

// errResultSetGone marks a failure of the paging calls after FindHosts:
// the accessor expired, or died with a session the client replaced.
var errResultSetGone = errors.New("result set is gone")

// FindHosts returns the hosts matching filter (see package filter) with
// the requested attributes; attributes a host has no value for are absent
// from its row. It pages with Config.PageSize and always releases the
// result set; if the result set or session vanishes mid-paging, the whole
// query runs once more.
func (c *Client) FindHosts(ctx context.Context, filter string, fields []string) ([]Params, error) {
	return c.find(ctx, "HostGroup.FindHosts", filter, fields)
}

// FindGroups is FindHosts over administration groups (attributes id,
// name, parentId, ...).
func (c *Client) FindGroups(ctx context.Context, filter string, fields []string) ([]Params, error) {
	return c.find(ctx, "HostGroup.FindGroups", filter, fields)
}

func (c *Client) find(ctx context.Context, method, filter string, fields []string) ([]Params, error) {
	rows, err := c.findOnce(ctx, method, filter, fields)
	if errors.Is(err, errResultSetGone) {
		rows, err = c.findOnce(ctx, method, filter, fields)
	}
	if err != nil {
		return nil, fmt.Errorf("find (%s): %w", filter, err)
	}
	return rows, nil
}

func (c *Client) findOnce(ctx context.Context, method, filter string, fields []string) (rows []Params, err error) {
	if fields == nil {
		fields = []string{}
	}
	r, err := c.Call(ctx, method, map[string]any{
		"wstrFilter":        filter,
		"vecFieldsToReturn": fields,
		"vecFieldsToOrder":  []any{},
		"pParams":           map[string]any{"KLSRVH_SLAVE_REC_DEPTH": 0, "KLGRP_FIND_FROM_CUR_VS_ONLY": true},
		"lMaxLifeTime":      lifeTime,
	}, true)
	if err != nil {
		return nil, err
	}
	acc := r["strAccessor"].Str()
	if acc == "" {
		return nil, fmt.Errorf("ksc %s: no accessor in the answer", method)
	}
	defer func() {
		// Release's error is ignored: the rows are already read (or the
		// query already failed), and a set that cannot be released dies
		// at the end of its lifetime anyway.
		_, _ = c.Call(context.WithoutCancel(ctx), "ChunkAccessor.Release", map[string]any{"strAccessor": acc}, false)
	}()
	gone := func(err error) error {
		var p *PxgError
		if errors.As(err, &p) || errors.Is(err, ErrSessionGone) {
			return fmt.Errorf("%w: %w", errResultSetGone, err)
		}
		return err
	}
	cr, err := c.Call(ctx, "ChunkAccessor.GetItemsCount", map[string]any{"strAccessor": acc}, true)
	if err != nil {
		return nil, gone(err)
	}
	total, _ := cr.RetVal().Int()
	rows = make([]Params, 0, total)
	for start := int64(0); start < total; {
		ch, err := c.Call(ctx, "ChunkAccessor.GetItemsChunk", map[string]any{
			"strAccessor": acc, "nStart": start, "nCount": c.cfg.PageSize,
		}, true)
		if err != nil {
			return nil, gone(err)
		}
		items := ch["pChunk"].Get("KLCSP_ITERATOR_ARRAY").Array()
		if len(items) == 0 {
			return nil, fmt.Errorf("ksc %s: empty chunk at %d of %d rows", method, start, total)
		}
		for _, it := range items {
			rows = append(rows, it.Params())
		}
		start += int64(len(items))
	}
	return rows, nil
}

// GetHostInfo returns the requested attributes of one host (by its
// KLHST_WKS_HOSTNAME id).
func (c *Client) GetHostInfo(ctx context.Context, hostID string, fields []string) (Params, error) {
	r, err := c.Call(ctx, "HostGroup.GetHostInfo", map[string]any{"strHostName": hostID, "pFields2Return": fields}, true)
	if err != nil {
		return nil, fmt.Errorf("get info of host %s: %w", hostID, err)
	}
	return r.RetVal().Params(), nil
}

// Product is one application registered on a host. Version is the
// registration version key; ProdVersion the full build when reported.
type Product struct {
	Key, Version, DisplayName, ProdVersion string
}

// GetHostProducts lists the host's applications, sorted by key and version.
func (c *Client) GetHostProducts(ctx context.Context, hostID string) ([]Product, error) {
	r, err := c.Call(ctx, "HostGroup.GetHostProducts", map[string]any{"strHostName": hostID}, true)
	if err != nil {
		return nil, fmt.Errorf("get products of host %s: %w", hostID, err)
	}
	var out []Product
	for key, vers := range r.RetVal().Params() {
		for ver, f := range vers.Params() {
			out = append(out, Product{Key: key, Version: ver, DisplayName: f.Get("DisplayName").Str(), ProdVersion: f.Get("ProdVersion").Str()})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

// RemoveHost deletes one host record. A host that does not exist gives a
// *PxgError (its code is not documented): callers that want idempotent
// removal check with FindHosts afterwards.
func (c *Client) RemoveHost(ctx context.Context, hostID string) error {
	if _, err := c.Call(ctx, "HostGroup.RemoveHost", map[string]any{"strHostName": hostID}, false); err != nil {
		return fmt.Errorf("remove host %s: %w", hostID, err)
	}
	return nil
}

// RemoveHosts calls HostGroup.RemoveHosts in batches of 100. On KSC
// 15.1+ bForceDestroy is ignored: hosts outside Unassigned are only moved
// there, so a second call (or RemoveHost) is needed (see ServerVersion).
func (c *Client) RemoveHosts(ctx context.Context, hostIDs []string, force bool) error {
	for i := 0; i < len(hostIDs); i += batch {
		part := hostIDs[i:min(i+batch, len(hostIDs))]
		if _, err := c.Call(ctx, "HostGroup.RemoveHosts", map[string]any{"pHostNames": part, "bForceDestroy": force}, false); err != nil {
			return fmt.Errorf("remove %d hosts: %w", len(part), err)
		}
	}
	return nil
}

// MoveHostsToGroup moves hosts into a group, in batches of 100.
func (c *Client) MoveHostsToGroup(ctx context.Context, groupID int, hostIDs []string) error {
	for i := 0; i < len(hostIDs); i += batch {
		part := hostIDs[i:min(i+batch, len(hostIDs))]
		if _, err := c.Call(ctx, "HostGroup.MoveHostsToGroup", map[string]any{"nGroup": groupID, "pHostNames": part}, false); err != nil {
			return fmt.Errorf("move %d hosts to group %d: %w", len(part), groupID, err)
		}
	}
	return nil
}

func (c *Client) groupID(ctx context.Context, method string) (int, error) {
	r, err := c.Call(ctx, method, nil, true)
	if err != nil {
		return 0, err
	}
	n, ok := r.RetVal().Int()
	if !ok {
		return 0, fmt.Errorf("ksc %s: answer %s is not a group id", method, r.RetVal())
	}
	return int(n), nil
}

// GroupIDGroups returns the id of the root group "Managed devices".
func (c *Client) GroupIDGroups(ctx context.Context) (int, error) {
	return c.groupID(ctx, "HostGroup.GroupIdGroups")
}

// GroupIDUnassigned returns the id of "Unassigned devices".
func (c *Client) GroupIDUnassigned(ctx context.Context) (int, error) {
	return c.groupID(ctx, "HostGroup.GroupIdUnassigned")
}

// GroupIDSuper returns the id of the "Super" pseudo-group.
func (c *Client) GroupIDSuper(ctx context.Context) (int, error) {
	return c.groupID(ctx, "HostGroup.GroupIdSuper")
}

// GroupInfo holds the group attributes that explain why hosts vanish.
type GroupInfo struct {
	Name             string
	AutoRemovePeriod int  // days of inactivity before KSC deletes a host; 0 = never
	NotifyPeriod     int  // days of inactivity before an event
	Inherited        bool // the two periods come from the parent group
}

// attrInherited is spelled with a trailing space in KSC.
const attrInherited = "KLGRP_HlfInherited "

// GetGroupInfo reads a group's name, autoRemovePeriod, notifyPeriod and
// inheritance flag (HostGroup.GetGroupInfoEx).
func (c *Client) GetGroupInfo(ctx context.Context, groupID int) (GroupInfo, error) {
	r, err := c.Call(ctx, "HostGroup.GetGroupInfoEx", map[string]any{
		"nGroupId": groupID, "pArrAttributes": []string{"name", "autoRemovePeriod", "notifyPeriod", attrInherited},
	}, true)
	if err != nil {
		return GroupInfo{}, fmt.Errorf("get info of group %d: %w", groupID, err)
	}
	p := r.RetVal().Params()
	ar, _ := p.Int("autoRemovePeriod")
	np, _ := p.Int("notifyPeriod")
	inh, _ := p[attrInherited].Bool()
	return GroupInfo{Name: p.Str("name"), AutoRemovePeriod: int(ar), NotifyPeriod: int(np), Inherited: inh}, nil
}

// UpdateGroup changes group attributes (HostGroup.UpdateGroup), e.g.
// {"autoRemovePeriod": 7}.
func (c *Client) UpdateGroup(ctx context.Context, groupID int, info map[string]any) error {
	if _, err := c.Call(ctx, "HostGroup.UpdateGroup", map[string]any{"nGroup": groupID, "pInfo": info}, false); err != nil {
		return fmt.Errorf("update group %d: %w", groupID, err)
	}
	return nil
}

// ServerVersion is what HostGroup.GetStaticInfo reports.
type ServerVersion struct {
	ID   int64  // KLADMSRV_SERVER_VERSION_ID, e.g. 0x000F0100 for 15.1
	Full string // KLADMSRV_PRODUCT_FULL_VERSION, e.g. "15.1.0.20748"
}

// Version ids from the doc's "KSC version constants".
const (
	VersionKSC15   = 0x000F0000
	VersionKSC15_1 = 0x000F0100
	VersionKSC16   = 0x00100000
)

// ForceDestroyIgnored reports whether RemoveHosts ignores bForceDestroy
// (KSC 15.1 and later).
func (v ServerVersion) ForceDestroyIgnored() bool { return v.ID >= VersionKSC15_1 }

// ServerVersion asks the server for its version.
func (c *Client) ServerVersion(ctx context.Context) (ServerVersion, error) {
	r, err := c.Call(ctx, "HostGroup.GetStaticInfo", map[string]any{
		"pValues": []string{"KLADMSRV_SERVER_VERSION_ID", "KLADMSRV_PRODUCT_FULL_VERSION"},
	}, true)
	if err != nil {
		return ServerVersion{}, fmt.Errorf("get server version: %w", err)
	}
	p := r.RetVal().Params()
	id, _ := p.Int("KLADMSRV_SERVER_VERSION_ID")
	return ServerVersion{ID: id, Full: p.Str("KLADMSRV_PRODUCT_FULL_VERSION")}, nil
}
