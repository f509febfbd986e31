package state

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/cockroachdb/pebble/v2/sstable"
)

// restoreChunk is one sstable's worth of buffered restore writes, copied
// into one arena as entries
//
//	uvarint(len(key)) || uvarint(len(value)+1, or 0 for a deletion) || key || value
//
// where key includes the store's prefix. The chunk so holds no pointers
// for the garbage collector to follow and does not keep fetched records
// alive. (Keeping the batches' keys and values instead of copies, with
// the entries pointing at them, cost 20-40% more CPU in the restore bench:
// the collector had more to do.)
type restoreChunk struct {
	arena []byte
	// order has an element per entry, in arrival order until sort; spare
	// is the sort's work space. Both are kept between chunks.
	order, spare []chunkOrder
	// common is how many leading bytes every key shares with the first.
	common int
}

// chunkOrder is what the sort moves: 8 bytes of an entry's key, from where
// the chunk's keys start to differ, and where the entry is in the arena
// (offsets grow with arrival order).
type chunkOrder struct {
	abbr   uint64
	off, n uint32 // the entry is arena[off:off+n]
}

func (c *restoreChunk) empty() bool { return len(c.order) == 0 }

// fits tells whether n more bytes fit in a chunk of size bytes; an empty
// chunk takes anything.
func (c *restoreChunk) fits(n, size int) bool {
	return c.empty() || len(c.arena)+n <= size
}

// add copies a write into the chunk, which is to hold about size bytes.
func (c *restoreChunk) add(prefix, key, value []byte, size int) {
	need := 2*binary.MaxVarintLen32 + len(prefix) + len(key) + len(value)
	if len(c.arena)+need > cap(c.arena) {
		c.grow(need, size)
	}
	// c.arena is stored back once: each store of it is a write barrier
	// while the collector marks.
	a := c.arena
	off := len(a)
	a = binary.AppendUvarint(a, uint64(len(prefix)+len(key)))
	vn := uint64(0)
	if value != nil {
		vn = uint64(len(value)) + 1
	}
	a = binary.AppendUvarint(a, vn)
	k0 := len(a)
	a = append(append(a, prefix...), key...)
	k := a[k0:]
	a = append(a, value...)
	c.arena = a
	if c.empty() {
		c.common = len(k)
	} else {
		first, _, _, _ := decodeEntry(a[c.order[0].off:])
		c.common = commonPrefixLen(first[:c.common], k)
	}
	c.order = append(c.order, chunkOrder{off: uint32(off), n: uint32(len(a) - off)})
}

// grow makes room for n more bytes. A chunk starts small, for the many
// restores of a few records (a standby's catch-up, the tail after a
// checkpoint), and then takes its whole size at once: growing by doubling
// would copy and clear each chunk about twice over. order is sized for
// as many entries as the chunk holds then, at the size they have so far.
func (c *restoreChunk) grow(n, size int) {
	const small = 256 << 10
	want := max(size, len(c.arena)+n)
	if cap(c.arena) == 0 && n <= small {
		want = small
	}
	arena := make([]byte, len(c.arena), want)
	copy(arena, c.arena)
	c.arena = arena
	if len(c.arena) > 0 {
		entries := len(c.order) * cap(c.arena) / len(c.arena)
		c.order = slices.Grow(c.order, entries+entries/8-len(c.order))
	}
}

func (c *restoreChunk) reset() {
	c.arena = c.arena[:0]
	c.order = c.order[:0]
}

// sort orders the entries by key, and by arrival among writes of one key.
//
// The 8 bytes of a key after the prefix all keys share, big-endian, decide
// most comparisons. A least-significant-digit radix sort on them, a byte
// at a time, is stable, so writes of one key stay in arrival order; it
// skips the bytes all keys share. Runs whose 8 bytes are equal but whose
// keys may differ after them are then sorted by the whole key, stably.
func (c *restoreChunk) sort() {
	n := len(c.order)
	var counts [8][256]uint32
	long := false // some key runs past the 8 bytes
	for i := range c.order {
		k, _, _, _ := decodeEntry(c.arena[c.order[i].off:])
		k = k[c.common:]
		var a [8]byte
		if copy(a[:], k) < len(k) {
			long = true
		}
		abbr := binary.BigEndian.Uint64(a[:])
		c.order[i].abbr = abbr
		for d := range counts {
			counts[d][byte(abbr>>(8*d))]++
		}
	}
	src := c.order
	dst := slices.Grow(c.spare[:0], n)[:n]
	for d := range counts {
		cnt := &counts[d]
		shift := 8 * d
		if cnt[byte(src[0].abbr>>shift)] == uint32(n) {
			continue // every key has the same byte here
		}
		var sum uint32
		for b, m := range cnt {
			cnt[b], sum = sum, sum+m
		}
		for _, o := range src {
			b := byte(o.abbr >> shift)
			dst[cnt[b]] = o
			cnt[b]++
		}
		src, dst = dst, src
	}
	c.order, c.spare = src, dst
	if !long {
		return
	}
	for i := 0; i < n; {
		j := i + 1
		for j < n && src[j].abbr == src[i].abbr {
			j++
		}
		if j-i > 1 {
			slices.SortStableFunc(src[i:j], func(x, y chunkOrder) int {
				kx, _, _, _ := decodeEntry(c.arena[x.off:])
				ky, _, _, _ := decodeEntry(c.arena[y.off:])
				return bytes.Compare(kx[c.common:], ky[c.common:])
			})
		}
		i = j
	}
}

func commonPrefixLen(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// write sorts the chunk and adds the last write of each key, in key order,
// to w: a put as a set, a deletion as a point deletion. buf is work space,
// returned for the next call.
//
// Read in key order, entries are all over the arena and nearly every one
// is a cache miss. So they are copied, a window of about gather bytes at a
// time, into buf first: in a loop that only copies, the processor has many
// of those misses outstanding at once, where between the writer's calls it
// has one. The writer then reads buf front to back, and buf stays small
// enough to stay in cache.
func (c *restoreChunk) write(w *sstable.Writer, buf []byte, gather int) ([]byte, error) {
	c.sort()
	order := c.order
	for i := 0; i < len(order); {
		buf = buf[:0]
		j := i
		for ; j < len(order) && (j == i || len(buf) < gather); j++ {
			o := order[j]
			buf = append(buf, c.arena[o.off:o.off+o.n]...)
		}
		b := buf
		for ; i < j; i++ {
			var (
				k, v []byte
				del  bool
			)
			k, v, del, b = decodeEntry(b)
			if i+1 < len(order) && order[i+1].abbr == order[i].abbr {
				// The next key starts with the same 8 bytes: it may be a
				// later write of this one.
				if next, _, _, _ := decodeEntry(c.arena[order[i+1].off:]); bytes.Equal(k, next) {
					continue
				}
			}
			var err error
			if del {
				err = w.Delete(k)
			} else {
				err = w.Set(k, v)
			}
			if err != nil {
				return buf, err
			}
		}
	}
	return buf, nil
}

// decodeEntry decodes the entry b starts with and returns what follows.
func decodeEntry(b []byte) (key, value []byte, del bool, rest []byte) {
	kn, n := binary.Uvarint(b)
	b = b[n:]
	vn, n := binary.Uvarint(b)
	b = b[n:]
	key = b[:kn:kn]
	if vn == 0 {
		return key, nil, true, b[kn:]
	}
	return key, b[kn : kn+vn-1 : kn+vn-1], false, b[kn+vn-1:]
}
