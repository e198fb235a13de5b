package secrets

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestIsName(t *testing.T) {
	for name, want := range map[string]bool{
		"password": true, "db_passwd": true, "ovh_application_key": true, "ovh_consumer_key": true,
		"api_token": true, "ssh_private_key": true, "my_secret": true, "luks_passphrase": true,
		"ovh_consumer_key_env": false, "api_token_file": false, "ssh_key": false, "user": false, "ovh_endpoint": false, "disks": false, "keyboard": false,
	} {
		if IsName(name) != want {
			t.Errorf("IsName(%q) = %v", name, !want)
		}
	}
}

func TestRedactorDerivedForms(t *testing.T) {
	const secret = "Hunter2-S3cret/Value+xyz"
	r := NewRedactor(Values(map[string]any{"db_password": secret, "user": "root"}))
	b64 := base64.StdEncoding.EncodeToString
	j, _ := json.Marshal(map[string]string{"pw": secret, "quote": `it's "` + secret + `"`})
	tests := []struct {
		name, in string
	}{
		{"plain", "pw=" + secret},
		{"lower", strings.ToLower(secret)},
		{"upper", strings.ToUpper(secret)},
		{"slice", secret[3:15]},
		{"join", strings.Join([]string{"a", secret, "b"}, ",")},
		{"to_json", string(j)},
		{"b64encode", b64([]byte(secret))},
		{"b64encode of a longer text", b64([]byte("user:" + secret))},
		{"b64encode at another alignment", b64([]byte("us:" + secret + "@host"))},
		{"urlencode", "https://x/?p=" + strings.NewReplacer("/", "%2F", "+", "%2B").Replace(secret)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := r.String(tt.in)
			if !strings.Contains(out, Mask) {
				t.Fatalf("nothing masked in %q", out)
			}
			for i := 0; i+Fragment <= len(secret); i++ {
				piece := secret[i : i+Fragment]
				for _, form := range []string{piece, strings.ToLower(piece), strings.ToUpper(piece)} {
					if strings.Contains(out, form) {
						t.Errorf("%q still shows %q", out, form)
					}
				}
			}
		})
	}
	if got := r.String("user root, nothing secret here"); got != "user root, nothing secret here" {
		t.Errorf("ordinary text changed: %q", got)
	}
}

func TestRedactorShortAndAdded(t *testing.T) {
	r := NewRedactor([]string{"abc", "s3cr"})
	if got := r.String("abc s3cr S3CR"); got != "abc ******** ********" {
		t.Errorf("got %q", got)
	}
	r.Add("later-secret-1")
	if got := r.String("x later-secret-1 y"); got != "x ******** y" {
		t.Errorf("got %q", got)
	}
	var nilR *Redactor
	if nilR.String("x") != "x" {
		t.Error("nil redactor changed text")
	}
}

func TestMaskVars(t *testing.T) {
	r := NewRedactor(Values(map[string]any{"api_token": "tok-1234567890"}))
	got := MaskVars(map[string]any{
		"api_token": "tok-1234567890",
		"nested":    map[string]any{"db": map[string]any{"password": "pw-abcdefgh", "port": 5432}},
		"secrets":   []any{"one-value", 7},
		"copy":      "url with tok-1234567890 inside",
		"user":      "root",
	}, r)
	s, _ := json.Marshal(got)
	want := `{"api_token":"********","copy":"url with ******** inside","nested":{"db":{"password":"********","port":5432}},"secrets":["********","********"],"user":"root"}`
	if string(s) != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
}

// FuzzRedactor checks that a secret inside any text never comes out.
func FuzzRedactor(f *testing.F) {
	f.Add("Hunter2-S3cret", "pw=", "!")
	f.Add("abcd", "abcabcd", "dabc")
	f.Add("aaaaaaaaaaaa", "aaaa", "a")
	f.Fuzz(func(t *testing.T, secret, before, after string) {
		if len(secret) < MinLen || strings.Contains(secret, "*") {
			return
		}
		r := NewRedactor([]string{secret})
		if out := r.String(before + secret + after); strings.Contains(out, secret) {
			t.Fatalf("%q shows the secret %q", out, secret)
		}
	})
}
