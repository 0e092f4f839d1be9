package loaders

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// A GGUF model split by llama.cpp's gguf-split is a set of files named
// <prefix>-%05d-of-%05d.gguf (llama_split_path), part numbers from 1, each
// saying split.no (from 0) and split.count; split.tensors.count is the
// tensors of all parts. One part alone is not the model. Compiled on first
// use, not at package init.
var splitName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(.*)-([0-9]{5,})-of-([0-9]{5,})\.gguf$`)
})

// splitPath returns the prefix of a part's path and the part number and
// count its name says, ok false when it does not follow the naming.
func splitPath(path string) (prefix string, no, count int64, ok bool) {
	m := splitName().FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return "", 0, 0, false
	}
	no, err1 := strconv.ParseInt(m[2], 10, 64)
	count, err2 := strconv.ParseInt(m[3], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, 0, false
	}
	return filepath.Join(filepath.Dir(path), m[1]), no, count, true
}

// partPath is llama.cpp's name of part no (from 1) of count.
func partPath(prefix string, no, count int64) string {
	return fmt.Sprintf("%s-%05d-of-%05d.gguf", prefix, no, count)
}

// maxSplitParts bounds split.count: a header could say a billion, and
// each part is a file to look for.
const maxSplitParts = 1 << 12

// splitSet returns, in part order, path and the other parts of its split
// set that planned (cleaned paths already to be read) lacks, and adds them
// to planned; just path when planned has them all. A part that is not
// there is an error naming it, and so is one that is a link out of the
// directory (see confine). A file whose name does not follow llama.cpp's
// naming brings in nothing; checkSplits then says what is missing. expanded
// holds the sets already looked at (by prefix and count), so that each set
// is listed once, not once per part.
func splitSet(src Source, path string, s *accounting.Split, planned, expanded map[string]bool) ([]string, error) {
	if s.Count > maxSplitParts {
		return nil, fmt.Errorf("%s: split.count %d exceeds %d", path, s.Count, maxSplitParts)
	}
	prefix, no, count, ok := splitPath(path)
	if !ok {
		return []string{path}, nil
	}
	if no != s.No+1 || count != s.Count {
		return nil, fmt.Errorf("%s: the name says part %d of %d, but split.no %d and split.count %d say part %d of %d",
			path, no, count, s.No, s.Count, s.No+1, s.Count)
	}
	set := partPath(prefix, 0, count)
	if expanded[set] {
		return []string{path}, nil
	}
	expanded[set] = true
	c := newConfine(src, filepath.Dir(path))
	var out []string
	for i := int64(1); i <= s.Count; i++ {
		p := partPath(prefix, i, s.Count)
		if i == no {
			out = append(out, path)
			continue
		}
		if planned[filepath.Clean(p)] {
			continue
		}
		if _, err := src.Stat(p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%s is part %d of a model split into %d files; part %d, %s, is missing", path, s.No+1, s.Count, i, p)
			}
			return nil, err
		}
		if err := c.check(p); err != nil {
			return nil, err
		}
		planned[filepath.Clean(p)] = true
		out = append(out, p)
	}
	return out, nil
}

// checkSplits checks the split sets among m's files: every part present
// once, each saying the same split.count, and the tensors of the parts
// adding up to split.tensors.count.
func checkSplits(m *accounting.Model) error {
	type set struct {
		count   int64
		tensors int64 // -1 until a part says
		parts   map[int64]int
		first   int // a file of the set, for messages
	}
	if !slices.ContainsFunc(m.Files, func(f accounting.File) bool { return f.Split != nil }) {
		return nil // no split sets: nothing to check, nor a pass over the tensors
	}
	perFile := make([]int64, len(m.Files))
	for i := range m.Tensors {
		perFile[m.Tensors[i].File]++
	}
	sets := map[string]*set{}
	var order []string
	for i, f := range m.Files {
		s := f.Split
		if s == nil || s.Count <= 1 && s.No == 0 {
			continue
		}
		key, _, _, ok := splitPath(f.Path)
		if !ok {
			key = "" // names that do not follow the naming: one set
		}
		st := sets[key]
		if st == nil {
			st = &set{count: s.Count, tensors: -1, parts: map[int64]int{}, first: i}
			sets[key] = st
			order = append(order, key)
		}
		first := m.Files[st.first].Path
		if s.Count != st.count {
			return fmt.Errorf("%s says split.count %d, but %s says %d", f.Path, s.Count, first, st.count)
		}
		if s.No < 0 || s.No >= s.Count {
			return fmt.Errorf("%s: split.no %d is not below split.count %d", f.Path, s.No, s.Count)
		}
		if j, dup := st.parts[s.No]; dup {
			return fmt.Errorf("%s and %s both say they are part %d (split.no %d) of a split model", m.Files[j].Path, f.Path, s.No+1, s.No)
		}
		st.parts[s.No] = i
		if s.Tensors >= 0 {
			if st.tensors >= 0 && s.Tensors != st.tensors {
				return fmt.Errorf("%s says split.tensors.count %d, but %s says %d", f.Path, s.Tensors, first, st.tensors)
			}
			st.tensors = s.Tensors
		}
	}
	for _, key := range order {
		st := sets[key]
		first := m.Files[st.first].Path
		var n int64
		for no := int64(0); no < st.count; no++ {
			i, ok := st.parts[no]
			if !ok {
				hint := ""
				if key == "" {
					hint = " (its name does not follow llama.cpp's <prefix>-%05d-of-%05d.gguf, so the other parts cannot be found: name them all)"
				}
				return fmt.Errorf("%s is part %d of a model split into %d files; part %d is missing%s", first, m.Files[st.first].Split.No+1, st.count, no+1, hint)
			}
			n += perFile[i]
		}
		if st.tensors >= 0 && n != st.tensors {
			return fmt.Errorf("%s: split.tensors.count says %d tensors in the %d parts, but they hold %d", first, st.tensors, st.count, n)
		}
	}
	return nil
}
