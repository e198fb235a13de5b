package tmpl

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestHashFilters(t *testing.T) {
	e := New()
	tests := []struct{ expr, want string }{
		{"'hello' | hash", "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"},
		{"'hello' | hash('sha1')", "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"},
		{"'hello' | hash('md5')", "5d41402abc4b2a76b9719d911017c592"},
		{"'hello' | hash('sha256')", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
		{"'' | hash('sha512')", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"},
		{"42 | hash('md5')", "a1d0c6e83f027327d8461063f4ac58a6"},
		// Python's crypt.crypt, and passlib's sha512_crypt with rounds=5000.
		{"'secret' | password_hash('sha512', 'saltsalt', rounds=5000)", "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1"},
		{"'secret' | password_hash('sha512', 'saltsalt')", "$6$rounds=656000$saltsalt$Vg7us3Hcq8rplCTNjwvGRwObM2xyfDZZ.XP2YLQ.ii85wAq/psu28uEfoMveNszsQWMgkWRxbZm2mBBlNn3.J0"},
		{"'secret' | password_hash('sha256_crypt', salt='saltsalt', rounds=5000)", "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := e.Eval(tt.expr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Eval(%q) = %v, want %s", tt.expr, got, tt.want)
			}
		})
	}
}

// The test vectors of the SHA-crypt specification (Ulrich Drepper,
// "Unix crypt using SHA-256 and SHA-512"); salts past 16 bytes are cut.
func TestShaCryptSpecVectors(t *testing.T) {
	schemes := shaCryptSchemes()
	tests := []struct {
		scheme, salt, key string
		rounds            int
		want              string
	}{
		{"sha512_crypt", "saltstring", "Hello world!", 5000, "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"sha512_crypt", "saltstringsaltst", "Hello world!", 10000, "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"sha512_crypt", "roundstoolow", "the minimum number is still observed", 1000, "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
		{"sha256_crypt", "saltstring", "Hello world!", 5000, "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
		{"sha256_crypt", "saltstringsaltst", "Hello world!", 10000, "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
	}
	for _, tt := range tests {
		got, err := shaCrypt(schemes[tt.scheme], []byte(tt.key), []byte(tt.salt), tt.rounds, tt.rounds != 5000, func() error { return nil })
		if err != nil || got != tt.want {
			t.Errorf("%s(%q, %q, %d) = %q, %v; want %q", tt.scheme, tt.key, tt.salt, tt.rounds, got, err, tt.want)
		}
	}
}

func TestPasswordHashRandomSalt(t *testing.T) {
	e := New()
	a, err := e.Eval("'pw' | password_hash('sha512', rounds=5000)", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.Eval("'pw' | password_hash('sha512', rounds=5000)", nil)
	s := a.(string)
	if !strings.HasPrefix(s, "$6$") || len(strings.Split(s, "$")[2]) != 16 || a == b {
		t.Errorf("password_hash with no salt = %q then %q, want two hashes with 16-character salts", a, b)
	}
}

func TestPasswordHashStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New().RenderContext(ctx, "{{ 'x' | password_hash('sha512', 'salt', rounds=999999999) }}", nil)
	if err == nil || !strings.Contains(err.Error(), "template evaluation stopped") || time.Since(start) > 5*time.Second {
		t.Errorf("error = %v after %s, want the evaluation stopped", err, time.Since(start))
	}
}

func TestHashFilterErrors(t *testing.T) {
	e := New()
	tests := []struct{ expr, want string }{
		{"'x' | hash('crc32')", "hash: unsupported hash type crc32"},
		{"'x' | password_hash('md5')", "password_hash: unsupported hash type md5"},
		{"'x' | password_hash('sha512', 'bad salt')", `password_hash: invalid character ' ' in sha512_crypt salt`},
		{"'x' | password_hash('sha512', 'a234567890abcdefg')", "longer than 16 characters"},
		{"'x' | password_hash('sha512', 'salt', rounds=999)", "rounds 999 is not between 1000 and 999999999"},
		{"'x' | password_hash('sha512', 'salt', rounds='many')", "rounds must be an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := e.Eval(tt.expr, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Eval(%q) error = %v, want it to contain %q", tt.expr, err, tt.want)
			}
		})
	}
}
