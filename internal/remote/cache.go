package remote

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The cache keeps the bytes fetched of commit-pinned Hub files: a file at a
// commit, with its content id, never changes, so entries never expire. It
// holds header bytes only (what was fetched) and changes no figure, only
// how many requests a second audit sends. Plain URLs are not cached: their
// content has no id known before a request.
//
// An entry is one file: the magic, the key, then (offset, length, bytes)
// records, all integers little-endian uint64.

const cacheMagic = "qinsaudit-remote-cache-v1\n"

// maxCacheEntry bounds an entry read back.
const maxCacheEntry = 512 << 20

func cacheKey(endpoint, repo, commit, name, etag string) string {
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://")
	return strings.Join([]string{host, repo, commit, name, etag}, "\x00")
}

func cachePath(dir, key string) string {
	h := sha256.Sum256([]byte(key))
	x := hex.EncodeToString(h[:])
	return filepath.Join(dir, x[:2], x)
}

// loadCache fills f's segments from its entry, if there is one; a damaged
// entry is ignored (and rewritten later).
func (f *File) loadCache() {
	data, err := os.ReadFile(cachePath(f.c.cfg.CacheDir, f.cacheKey))
	if err != nil || len(data) > maxCacheEntry {
		return
	}
	segs, ok := decodeEntry(data, f.cacheKey, f.size)
	if !ok || len(segs) == 0 {
		return
	}
	f.segs = segs
	f.c.hits.Add(1)
}

func decodeEntry(data []byte, key string, size int64) ([]seg, bool) {
	head := cacheMagic + key + "\n"
	if !bytes.HasPrefix(data, []byte(head)) {
		return nil, false
	}
	data = data[len(head):]
	var segs []seg
	var last int64 = -1
	for len(data) > 0 {
		if len(data) < 16 {
			return nil, false
		}
		off := binary.LittleEndian.Uint64(data)
		n := binary.LittleEndian.Uint64(data[8:])
		data = data[16:]
		if n == 0 || n > uint64(len(data)) || off > uint64(size) || n > uint64(size)-off || int64(off) <= last {
			return nil, false
		}
		segs = append(segs, seg{int64(off), bytes.Clone(data[:n])})
		last = int64(off + n)
		data = data[n:]
	}
	return segs, true
}

// saveCache writes f's segments if it fetched any, atomically.
func (f *File) saveCache(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cacheKey == "" || !f.dirty || dir == "" {
		return nil
	}
	var b bytes.Buffer
	b.WriteString(cacheMagic + f.cacheKey + "\n")
	for _, s := range f.segs {
		var h [16]byte
		binary.LittleEndian.PutUint64(h[:], uint64(s.off))
		binary.LittleEndian.PutUint64(h[8:], uint64(len(s.data)))
		b.Write(h[:])
		b.Write(s.data)
	}
	if err := writeAtomic(cachePath(dir, f.cacheKey), b.Bytes()); err != nil {
		return err
	}
	f.dirty = false
	return nil
}

// writeAtomic writes a cache entry whole or not at all.
func writeAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("header cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("header cache: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("header cache: %w", err)
	}
	return nil
}
