package pytorch

// torch.save names storages 0, 1, 2, ... and their records data/0,
// data/1, ...: the two lookups made per tensor (the record of a storage
// key, the storage already made for it) go to slices indexed by the key
// when it is such a number, and to maps otherwise (legacy keys, other
// writers). Measured on 100,000 tensors, the string maps they replace
// were 12% of the load.

// decimalIndex returns the value of key when it is a decimal number as
// torch writes them (no sign, no leading zero) below limit.
func decimalIndex(key string, limit int) (int, bool) {
	if len(key) == 0 || len(key) > 9 || (key[0] == '0' && len(key) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n < limit
}

// recordSet is the records of a zip checkpoint under its folder.
type recordSet struct {
	byName map[string]zipEntry // all but data/<n>
	data   []zipEntry          // data/<n> at n
}

func newRecordSet(n int) *recordSet {
	return &recordSet{byName: map[string]zipEntry{}, data: make([]zipEntry, n)}
}

// add records e under name (which may alias the directory); the first of
// two records of one name wins.
func (r *recordSet) add(name []byte, e zipEntry) {
	e.set = true
	if len(name) > 5 && string(name[:5]) == "data/" {
		if i, ok := decimalIndex(string(name[5:]), len(r.data)); ok {
			if !r.data[i].set {
				r.data[i] = e
			}
			return
		}
	}
	if _, dup := r.byName[string(name)]; !dup {
		r.byName[string(name)] = e
	}
}

// get returns the record dir+key, false if there is none.
func (r *recordSet) get(dir, key string) (zipEntry, bool) {
	if dir == "data/" {
		if i, ok := decimalIndex(key, len(r.data)); ok {
			return r.data[i], r.data[i].set
		}
	}
	e, ok := r.byName[dir+key]
	return e, ok
}

// use marks the record dir+key, which get found, as a storage a tensor
// uses: the records left unmarked are no tensor's (see unusedStorages).
func (r *recordSet) use(dir, key string) {
	if dir == "data/" {
		if i, ok := decimalIndex(key, len(r.data)); ok {
			r.data[i].used = true
			return
		}
	}
	if e, ok := r.byName[dir+key]; ok {
		e.used = true
		r.byName[dir+key] = e
	}
}

// refCache maps storage keys to what their persistent ids resolved to.
type refCache struct {
	dense  []*storageRef
	sparse map[string]*storageRef
	n      int
}

// maxDenseRef bounds the slice: keys above it go to the map.
const maxDenseRef = 1 << 22

func newRefCache() *refCache { return &refCache{} }

func (c *refCache) get(key string) *storageRef {
	if i, ok := decimalIndex(key, len(c.dense)); ok && c.dense[i] != nil {
		return c.dense[i]
	}
	return c.sparse[key]
}

func (c *refCache) set(key string, ref *storageRef) {
	c.n++
	// Grow the slice only for keys close to the ones seen: torch's
	// numbering. A key far beyond goes to the map.
	if i, ok := decimalIndex(key, max(2*len(c.dense), 1024)); ok && i < maxDenseRef {
		if i >= len(c.dense) {
			c.dense = append(c.dense, make([]*storageRef, i+1-len(c.dense))...)
		}
		c.dense[i] = ref
		return
	}
	if c.sparse == nil {
		c.sparse = map[string]*storageRef{}
	}
	c.sparse[key] = ref
}
