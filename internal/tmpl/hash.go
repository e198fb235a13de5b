package tmpl

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/hex"

	"hash"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// hashes are the hashlib names the hash filter knows.
func hashes() map[string]func() hash.Hash {
	return map[string]func() hash.Hash{
		"md5": md5.New, "sha1": sha1.New, "sha224": sha256.New224, "sha256": sha256.New,
		"sha384": sha512.New384, "sha512": sha512.New,
		"sha3_224": func() hash.Hash { return sha3.New224() }, "sha3_256": func() hash.Hash { return sha3.New256() },
		"sha3_384": func() hash.Hash { return sha3.New384() }, "sha3_512": func() hash.Hash { return sha3.New512() },
	}
}

// filterHash follows get_hash in Ansible's lib/ansible/plugins/filter/core.py:
// the hex digest of the text, sha1 unless another hashlib name is given.
func filterHash(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	name := stringParam(params, 0, "hashtype", "sha1")
	newHash, ok := hashes()[strings.ToLower(name)]
	if !ok {
		return fail("hash: unsupported hash type %s", name)
	}
	h := newHash()
	h.Write([]byte(in.String()))
	return exec.AsValue(hex.EncodeToString(h.Sum(nil)))
}

// shaCryptScheme is one of the SHA-crypt schemes of Ulrich Drepper's
// "Unix crypt using SHA-256 and SHA-512" specification.
type shaCryptScheme struct {
	ident         string
	newHash       func() hash.Hash
	order         []int // the digest's bytes in the order the spec encodes them
	defaultRounds int   // passlib's default, which Ansible's password_hash uses
}

const (
	shaCryptSaltMax      = 16
	shaCryptRoundsMin    = 1000
	shaCryptRoundsMax    = 999_999_999
	shaCryptRoundsImplic = 5000
	cryptAlphabet        = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

func shaCryptSchemes() map[string]shaCryptScheme {
	return map[string]shaCryptScheme{
		"sha512_crypt": {ident: "6", newHash: sha512.New, defaultRounds: 656000, order: []int{
			0, 21, 42, 22, 43, 1, 44, 2, 23, 3, 24, 45, 25, 46, 4, 47, 5, 26, 6, 27, 48, 28, 49, 7,
			50, 8, 29, 9, 30, 51, 31, 52, 10, 53, 11, 32, 12, 33, 54, 34, 55, 13, 56, 14, 35, 15, 36, 57,
			37, 58, 16, 59, 17, 38, 18, 39, 60, 40, 61, 19, 62, 20, 41, 63}},
		"sha256_crypt": {ident: "5", newHash: sha256.New, defaultRounds: 535000, order: []int{
			0, 10, 20, 21, 1, 11, 12, 22, 2, 3, 13, 23, 24, 4, 14, 15, 25, 5, 6, 16, 26, 27, 7, 17,
			18, 28, 8, 9, 19, 29, 31, 30}},
	}
}

// shaCrypt computes the spec's hash of key with salt and rounds; alive is
// asked every few thousand rounds whether to go on.
func shaCrypt(s shaCryptScheme, key, salt []byte, rounds int, explicitRounds bool, alive func() error) (string, error) {
	sum := func(parts ...[]byte) []byte {
		h := s.newHash()
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}
	repeat := func(digest []byte, n int) []byte {
		out := make([]byte, 0, n)
		for len(out) < n {
			out = append(out, digest[:min(len(digest), n-len(out))]...)
		}
		return out
	}
	b := sum(key, salt, key)
	a := s.newHash()
	a.Write(key)
	a.Write(salt)
	a.Write(repeat(b, len(key)))
	for n := len(key); n > 0; n >>= 1 {
		if n&1 == 1 {
			a.Write(b)
		} else {
			a.Write(key)
		}
	}
	c := a.Sum(nil)
	dp := s.newHash()
	for range len(key) {
		dp.Write(key)
	}
	p := repeat(dp.Sum(nil), len(key))
	ds := s.newHash()
	for range 16 + int(c[0]) {
		ds.Write(salt)
	}
	sp := repeat(ds.Sum(nil), len(salt))
	for i := range rounds {
		if i%4096 == 0 {
			if err := alive(); err != nil {
				return "", err
			}
		}
		h := s.newHash()
		if i%2 == 1 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sp)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i%2 == 1 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}
	var out strings.Builder
	out.WriteString("$" + s.ident + "$")
	if explicitRounds {
		out.WriteString("rounds=" + strconv.Itoa(rounds) + "$")
	}
	out.Write(salt)
	out.WriteByte('$')
	for i := 0; i < len(s.order); i += 3 {
		group := s.order[i:min(i+3, len(s.order))]
		w, chars := 0, 4
		switch len(group) {
		case 3:
			w = int(c[group[0]])<<16 | int(c[group[1]])<<8 | int(c[group[2]])
		case 2:
			w, chars = int(c[group[0]])<<8|int(c[group[1]]), 3
		case 1:
			w, chars = int(c[group[0]]), 2
		}
		for range chars {
			out.WriteByte(cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	return out.String(), nil
}

// passwordHashTypes maps password_hash's hash types to passlib's schemes,
// as Ansible's lib/ansible/plugins/filter/core.py does.
func passwordHashTypes() map[string]string {
	return map[string]string{"sha512": "sha512_crypt", "sha256": "sha256_crypt"}
}

// filterPasswordHash follows get_encrypted_password in Ansible's
// lib/ansible/plugins/filter/core.py with passlib's SHA-crypt: a random
// 16-character salt unless one is given, and passlib's default rounds,
// which it then writes into the hash.
func filterPasswordHash(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	hashType := stringParam(params, 0, "hashtype", "sha512")
	name := hashType
	if n, ok := passwordHashTypes()[hashType]; ok {
		name = n
	}
	scheme, ok := shaCryptSchemes()[name]
	if !ok {
		return fail("password_hash: unsupported hash type %s (sha512 and sha256 are)", hashType)
	}
	salt := stringParam(params, 1, "salt", "")
	if salt == "" {
		size := intParam(params, 2, "salt_size", shaCryptSaltMax)
		if size < 1 || size > shaCryptSaltMax {
			return fail("password_hash: salt_size %d is not between 1 and %d", size, shaCryptSaltMax)
		}
		salt = randomSalt(size)
	}
	if len(salt) > shaCryptSaltMax {
		return fail("password_hash: salt %q is longer than %d characters", salt, shaCryptSaltMax)
	}
	if i := strings.IndexFunc(salt, func(r rune) bool { return !strings.ContainsRune(cryptAlphabet, r) }); i >= 0 {
		return fail("password_hash: invalid character %q in %s salt", salt[i], name)
	}
	rounds, explicit := scheme.defaultRounds, true
	if v := param(params, 3, "rounds"); v != nil && !v.IsNil() {
		if !v.IsInteger() {
			return fail("password_hash: rounds must be an integer, got %s", describe(v))
		}
		rounds = v.Integer()
		explicit = rounds != shaCryptRoundsImplic
	}
	if rounds < shaCryptRoundsMin || rounds > shaCryptRoundsMax {
		return fail("password_hash: rounds %d is not between %d and %d", rounds, shaCryptRoundsMin, shaCryptRoundsMax)
	}
	b := budgetOf(e.Environment.Context)
	out, err := shaCrypt(scheme, []byte(in.String()), []byte(salt), rounds, explicit, b.alive)
	if err != nil {
		return fail("password_hash: %w", err)
	}
	return exec.AsValue(out)
}

func randomSalt(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails
	for i, c := range buf {
		buf[i] = cryptAlphabet[int(c)%len(cryptAlphabet)]
	}
	return string(buf)
}
