package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/neutral"
	"github.com/qinsaudit/qinsaudit/internal/remote"
	"github.com/qinsaudit/qinsaudit/loaders"
	"github.com/qinsaudit/qinsaudit/report"
)

// openModel loads the model args name: local paths, or one remote source
// (hf://ORG/REPO[@REV][/PATH], a Hub URL, any https:// URL of a model
// file), read header-only through the same directory rules as a local
// folder. The remote block is nil for local files.
func openModel(args []string, af *auditFlags) (*accounting.Model, *report.Remote, error) {
	var remotes int
	for _, a := range args {
		if remote.IsRemote(a) {
			remotes++
		}
	}
	if remotes == 0 {
		stop := activity(af.stderr(), "reading "+neutral.Clip(neutral.Escape(strings.Join(args, " ")), 48), elapsed(time.Now()))
		m, err := loaders.Open(args...)
		stop()
		if err != nil {
			return nil, nil, badInput(err)
		}
		return m, nil, nil
	}
	if len(args) > 1 {
		return nil, nil, usageErrorf("a remote model is read alone: got %d paths with %s", len(args), args[0])
	}
	cfg := remote.ConfigFromEnv(af.noCache)
	src, err := remote.Parse(args[0], cfg.Endpoint)
	if err != nil {
		return nil, nil, usageErrorf("%v", err)
	}
	c := remote.NewClient(cfg)
	stop := activity(af.stderr(), "reading "+neutral.Clip(neutral.Escape(src.Raw), 48), func() string {
		st := c.Stats()
		return fmt.Sprintf("%s requests, %s received, %.1f s", accounting.Comma(st.Requests), accounting.ByteSize(st.BytesReceived), st.Wall.Seconds())
	})
	fsys, p, err := c.Model(context.Background(), src)
	if err != nil {
		stop()
		return nil, nil, badInput(err)
	}
	m, err := loaders.OpenSource(fsys, p)
	stop()
	if err != nil {
		return nil, nil, badInput(fmt.Errorf("%s: %w", src.Raw, err))
	}
	// The cache only saves requests next time: failing to write it
	// changes nothing in this report.
	_ = fsys.Repo().Close()
	st := c.Stats()
	return m, &report.Remote{
		Sources: []report.RemoteSource{{Source: src.Raw, Endpoint: src.Endpoint, Repo: src.Repo,
			Revision: src.Revision, Commit: fsys.Repo().Commit}},
		Requests: st.Requests, BytesReceived: st.BytesReceived, CacheHits: st.CacheHits,
		WallMillis: st.Wall.Milliseconds(),
	}, nil
}

// elapsed is an activity line's text for work that counts nothing: the
// seconds since start.
func elapsed(start time.Time) func() string {
	return func() string { return fmt.Sprintf("%.1f s", time.Since(start).Seconds()) }
}
