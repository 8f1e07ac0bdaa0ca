package kscsim

import "strconv"

// Simulated Tasks class. Confirmed against the KSC Open API doc and the
// vendor's KlAkOAPI sample "Enumerating tasks, querying task statistics and
// running task": Tasks.ResetTasksIterator (nGroupId, bGroupIdSignificant,
// strProductName, strVersion, strComponentName, strInstanceId, strTaskName,
// bIncludeSupergroups, [out] strTaskIteratorId), Tasks.GetNextTask
// (strTaskIteratorId, [out] pTaskData; empty when exhausted; the display
// name is pTaskData.TASK_INFO_PARAMS.DisplayName, the id TASK_UNIQUE_ID),
// Tasks.ReleaseTasksIterator, Tasks.GetTask / GetTaskData (strTask ->
// DisplayName, TASK_UNIQUE_ID, TASKID_PRODUCT_NAME, TASKID_VERSION,
// TASK_NAME, PRTS_TASK_CREATION_DATE), Tasks.RunTask(strTask) and
// Tasks.GetTaskStatistics(strTask) -> host counts keyed "1" (not
// distributed), "2" (running), "4" (completed), "8" (warning), "16"
// (failed), "32" (scheduled), "64" (paused) plus GNRL_COMPLETED_PERCENT and
// KLTSK_NEED_RBT_CNT.
//
// Lab assumptions (not confirmed):
//   - every lab task is a group task of the root "Managed devices" group;
//     its statistics count its targets per state (see targets.go), and a
//     task without targets (AddTask, or a run that reached none) counts as
//     one target in the task's state; with bGroupIdSignificant the iterator lists tasks only for
//     that group or its subgroups; other filters are ignored;
//   - GetNextTask returns no PxgRetVal; RunTask on a running task is a no-op;
//   - TASKID_PRODUCT_NAME "1093", TASKID_VERSION "1.0.0.0", TASK_NAME
//     "KLLAB_TASK" for all lab tasks;
//   - the failure text of a failed task is in the lab-only statistics
//     attribute KLLAB_TASK_ERROR;
//   - Tasks.GetAllTasksOfHost lists every task when the host exists.

func (s *Server) taskArg(a params) (*task, *pxgError) {
	id, perr := argString(a, "strTask")
	if perr != nil {
		return nil, perr
	}
	t, ok := s.tasks[id]
	if !ok {
		return nil, s.notFound("task " + id)
	}
	return t, nil
}

func (s *Server) taskInfo(t *task) params {
	return params{
		"DisplayName":             t.name,
		"TASK_UNIQUE_ID":          t.id,
		"TASKID_PRODUCT_NAME":     "1093",
		"TASKID_VERSION":          "1.0.0.0",
		"TASK_NAME":               "KLLAB_TASK",
		"PRTS_TASK_CREATION_DATE": t.created.UTC().Truncate(1e9),
		"TASK_INFO_PARAMS":        params{"DisplayName": t.name, "PRTS_TASK_CREATION_DATE": t.created.UTC().Truncate(1e9)},
	}
}

func (s *Server) mResetTasksIterator(sess string, a params) (params, *pxgError) {
	gid, perr := argInt(a, "nGroupId", 0, false)
	if perr != nil {
		return nil, perr
	}
	significant, perr := argBool(a, "bGroupIdSignificant")
	if perr != nil {
		return nil, perr
	}
	var ids []string
	if !significant || s.inSubtree(int(gid), groupGroups) {
		ids = append(ids, s.taskOrder...)
	}
	id := newGUID()
	s.taskIters[id] = &taskIter{session: sess, ids: ids}
	return params{"strTaskIteratorId": id}, nil
}

func (s *Server) taskIterArg(sess string, a params) (string, *taskIter, *pxgError) {
	id, perr := argString(a, "strTaskIteratorId")
	if perr != nil {
		return "", nil, perr
	}
	it, ok := s.taskIters[id]
	if !ok || it.session != sess {
		return "", nil, s.notFound("task iterator " + id)
	}
	return id, it, nil
}

func (s *Server) mGetNextTask(sess string, a params) (params, *pxgError) {
	_, it, perr := s.taskIterArg(sess, a)
	if perr != nil {
		return nil, perr
	}
	for len(it.ids) > 0 {
		t, ok := s.tasks[it.ids[0]]
		it.ids = it.ids[1:]
		if ok {
			return params{"pTaskData": s.taskInfo(t)}, nil
		}
	}
	return params{"pTaskData": params{}}, nil
}

func (s *Server) mReleaseTasksIterator(sess string, a params) (params, *pxgError) {
	id, _, perr := s.taskIterArg(sess, a)
	if perr != nil {
		return nil, perr
	}
	delete(s.taskIters, id)
	return params{}, nil
}

func (s *Server) mGetTask(_ string, a params) (params, *pxgError) {
	t, perr := s.taskArg(a)
	if perr != nil {
		return nil, perr
	}
	return ret(s.taskInfo(t)), nil
}

func (s *Server) mRunTask(_ string, a params) (params, *pxgError) {
	t, perr := s.taskArg(a)
	if perr != nil {
		return nil, perr
	}
	if t.state == taskRunning {
		return params{}, nil
	}
	t.state, t.percent, t.err = taskRunning, 0, nil
	t.targets = nil
	t.starts++
	go s.runTask(t)
	return params{}, nil
}

func (s *Server) runTask(t *task) {
	var err error
	if t.run != nil {
		err = t.run(s.ctx, &Run{s: s, t: t})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishTargetsLocked(t, err)
	if err != nil {
		t.state, t.err = taskFailed, err
		return
	}
	t.state, t.percent = taskOK, 100
}

func (s *Server) mGetTaskStatistics(_ string, a params) (params, *pxgError) {
	t, perr := s.taskArg(a)
	if perr != nil {
		return nil, perr
	}
	out := params{"GNRL_COMPLETED_PERCENT": int64(t.percent), "KLTSK_NEED_RBT_CNT": int64(0)}
	for _, k := range []string{"1", "2", "4", "8", "16", "32", "64"} {
		out[k] = int64(0)
	}
	if len(t.targets) == 0 {
		out[strconv.Itoa(t.state)] = int64(1) // the state constants are the statistics keys
	}
	for _, tg := range t.targets {
		k := strconv.Itoa(int(tg.state))
		out[k] = out[k].(int64) + 1
	}
	if t.err != nil {
		out["KLLAB_TASK_ERROR"] = t.err.Error()
	}
	return ret(out), nil
}

func (s *Server) mGetAllTasksOfHost(_ string, a params) (params, *pxgError) {
	if _, perr := s.hostArg(a, "strHostName"); perr != nil {
		return nil, perr
	}
	ids := make([]any, 0, len(s.taskOrder))
	for _, id := range s.taskOrder {
		ids = append(ids, id)
	}
	return ret(ids), nil
}
