package tmpl

import (
	"crypto/sha512"
	"math/big"
	"math/bits"
	mrand "math/rand/v2"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// mt19937 is Python's random.Random: the Mersenne Twister seeded as
// CPython's random_seed does, so that random(seed=...) picks what Ansible
// picks for the same seed.
type mt19937 struct {
	state [624]uint32
	index int
}

func (m *mt19937) initGenrand(s uint32) {
	m.state[0] = s
	for i := 1; i < len(m.state); i++ {
		m.state[i] = 1812433253*(m.state[i-1]^(m.state[i-1]>>30)) + uint32(i)
	}
	m.index = len(m.state)
}

func (m *mt19937) initByArray(key []uint32) {
	const n = 624
	m.initGenrand(19650218)
	i, j := 1, 0
	for k := max(n, len(key)); k > 0; k-- {
		m.state[i] = (m.state[i] ^ ((m.state[i-1] ^ (m.state[i-1] >> 30)) * 1664525)) + key[j] + uint32(j)
		i++
		j++
		if i >= n {
			m.state[0] = m.state[n-1]
			i = 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k := n - 1; k > 0; k-- {
		m.state[i] = (m.state[i] ^ ((m.state[i-1] ^ (m.state[i-1] >> 30)) * 1566083941)) - uint32(i)
		i++
		if i >= n {
			m.state[0] = m.state[n-1]
			i = 1
		}
	}
	m.state[0] = 0x80000000
}

func (m *mt19937) uint32() uint32 {
	const n, mid = 624, 397
	if m.index >= n {
		for k := range n {
			y := m.state[k]&0x80000000 | m.state[(k+1)%n]&0x7fffffff
			v := m.state[(k+mid)%n] ^ y>>1
			if y&1 == 1 {
				v ^= 0x9908b0df
			}
			m.state[k] = v
		}
		m.index = 0
	}
	y := m.state[m.index]
	m.index++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	return y ^ y>>18
}

// pythonSeed seeds as random.seed(a) with version 2: a string becomes the
// number of its bytes followed by their SHA-512, an integer its absolute
// value, cut into 32-bit words from the least significant.
func pythonSeed(seed *exec.Value) *mt19937 {
	var n *big.Int
	if seed.IsInteger() {
		n = big.NewInt(int64(seed.Integer()))
		n.Abs(n)
	} else {
		b := []byte(seed.String())
		sum := sha512.Sum512(b)
		n = new(big.Int).SetBytes(append(b, sum[:]...))
	}
	var key []uint32
	for _, w := range n.Bits() {
		for range bits.UintSize / 32 {
			key = append(key, uint32(w))
			w = w >> 16 >> 16
		}
	}
	for len(key) > 1 && key[len(key)-1] == 0 {
		key = key[:len(key)-1]
	}
	if len(key) == 0 {
		key = []uint32{0}
	}
	m := &mt19937{}
	m.initByArray(key)
	return m
}

// below is Python's Random._randbelow: getrandbits of n's bit length
// until the value is below n.
func (m *mt19937) below(n uint64) uint64 {
	k := bits.Len64(n)
	for {
		var r uint64
		if k <= 32 {
			r = uint64(m.uint32() >> (32 - k))
		} else {
			lo := uint64(m.uint32())
			hi := uint64(m.uint32() >> (64 - k))
			r = hi<<32 | lo
		}
		if r < n {
			return r
		}
	}
}

// filterRandom follows rand in Ansible's lib/ansible/plugins/filter/core.py:
// a number in range(start, end, step) for an integer, an item for a list,
// repeatable with a seed.
func filterRandom(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	var below func(uint64) uint64
	if seed := param(params, -1, "seed"); seed != nil && !seed.IsNil() {
		below = pythonSeed(seed).below
	} else {
		below = func(n uint64) uint64 { return mrand.Uint64N(n) }
	}
	start, step := param(params, 0, "start"), param(params, 1, "step")
	switch {
	case in.IsInteger():
		lo, st := 0, 1
		if start != nil && start.IsTrue() {
			lo = start.Integer()
		}
		if step != nil && step.IsTrue() {
			st = step.Integer()
		}
		end := in.Integer()
		var n int
		if st > 0 {
			n = (end - lo + st - 1) / st
		} else {
			n = (end - lo + st + 1) / st
		}
		if n <= 0 {
			return fail("random: empty range for randrange(%d, %d, %d)", lo, end, st)
		}
		return exec.AsValue(lo + st*int(below(uint64(n))))
	case in.IsList() || in.IsString():
		if (start != nil && start.IsTrue()) || (step != nil && step.IsTrue()) {
			return fail("random: start and step can only be used with integer values")
		}
		if in.Len() == 0 {
			return fail("random: cannot choose from an empty sequence")
		}
		if in.IsString() {
			r := []rune(in.String())
			return exec.AsValue(string(r[below(uint64(len(r)))]))
		}
		return in.Index(int(below(uint64(in.Len()))))
	}
	return fail("random: can only be used on sequences and integers, got %s", describe(in))
}
