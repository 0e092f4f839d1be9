package main

import (
	"context"
	"fmt"

	"github.com/qinsaudit/qinsaudit/accounting"
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
		m, err := loaders.Open(args...)
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
	fsys, p, err := c.Model(context.Background(), src)
	if err != nil {
		return nil, nil, badInput(err)
	}
	m, err := loaders.OpenSource(fsys, p)
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
