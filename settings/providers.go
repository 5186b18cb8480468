package settings

import (
	"fmt"
	"net/http"
)

// Provider is a media provider: where the coreapp fetches media sent by
// link, and how it authenticates.
type Provider struct {
	Name   string         `json:"name"`
	Type   string         `json:"type"`
	Config ProviderConfig `json:"config"`
}

// ProviderConfig holds exactly one of Bearer and Basic.
type ProviderConfig struct {
	Bearer string     `json:"bearer,omitempty"`
	Basic  *BasicAuth `json:"basic,omitempty"`
}

// BasicAuth is HTTP basic authentication towards a media provider.
type BasicAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// RedactedSecret replaces secrets in provider listings (SETTINGS.md decides
// that GET redacts them). It is fixed-length so it reveals nothing of the
// secret's length.
const RedactedSecret = "********"

// ProviderType is the only provider type the seed documents.
const ProviderType = "www"

// maxProviderName is SETTINGS.md's limit on a provider name.
const maxProviderName = 200

// Redacted is p with the bearer token and the basic password replaced by
// RedactedSecret (the basic username is kept, it identifies the account).
// p itself is not modified.
func (p Provider) Redacted() Provider {
	if p.Config.Bearer != "" {
		p.Config.Bearer = RedactedSecret
	}
	if p.Config.Basic != nil {
		b := *p.Config.Basic
		b.Password = RedactedSecret
		p.Config.Basic = &b
	}
	return p
}

// ValidateProviderName checks a name (e.g. from the DELETE path): letters,
// digits, '-' and '_', 1 to 200 characters. The error names field "name".
func ValidateProviderName(name string) *Error {
	return validateProviderName("name", name)
}

func validateProviderName(field, name string) *Error {
	const expected = "must be 1 to 200 characters, each a letter, digit, '-' or '_'"
	if name == "" || len(name) > maxProviderName {
		e := InvalidValue(field, expected, name)
		return &e
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			e := InvalidValue(field, expected, name)
			return &e
		}
	}
	return nil
}

// ParseProviders validates a POST body: a JSON array of providers. All or
// nothing: any problem returns nil and every error found.
//
// Decisions where SETTINGS.md is silent:
//   - Paths in Details are "media.providers[i].field", where the providers
//     appear in GET.
//   - name, type and config are required (1008); type must be "www".
//   - config must hold exactly one of bearer and basic: neither is 1008,
//     both is 1009. A bearer token, basic username and password must be
//     non-empty strings.
//   - The same name twice in one body is 1009 on the later one (which one
//     should win would be a guess).
//   - Unknown keys are 1010; duplicate JSON keys, bad JSON or a body that is
//     not an array are one 1025. An empty array is valid (and adds nothing).
//   - A string (value or key) escaping a lone UTF-16 surrogate is 1009 at
//     its path; the other rules are not applied to that provider.
//   - Errors come in body order: provider by provider, and within one
//     provider name, type, config, then unknown keys.
func ParseProviders(body []byte) ([]Provider, Errors) {
	if len(body) > MaxBodyBytes {
		return nil, Errors{TooLarge(MaxBodyBytes)}
	}
	root, perr := parseBody(body)
	if perr != nil {
		return nil, Errors{*perr}
	}
	if root.kind != kindArray {
		return nil, Errors{InvalidRequest("request body must be a JSON array of providers, got " + root.describe())}
	}
	var errs Errors
	out := make([]Provider, 0, len(root.elems))
	seen := map[string]int{}
	for i, el := range root.elems {
		path := fmt.Sprintf("media.providers[%d]", i)
		// Judged before the rules, which would see the U+FFFD encoding/json
		// made of a lone surrogate, not what the client sent.
		if es := unicodeErrors(path, el); len(es) > 0 {
			errs = append(errs, es...)
			continue
		}
		p, es := parseProvider(path, el)
		if len(es) == 0 {
			if j, dup := seen[p.Name]; dup {
				es = append(es, InvalidValue(path+".name", fmt.Sprintf("must be unique in the body (also at media.providers[%d])", j), p.Name))
			}
			seen[p.Name] = i
		}
		errs = append(errs, es...)
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func parseProvider(path string, n *node) (Provider, Errors) {
	var p Provider
	if n.kind != kindObject {
		return p, Errors{InvalidValue(path, `must be an object {"name", "type", "config"}`, n)}
	}
	var errs Errors
	obj := members(n)
	if v, ok := obj["name"]; !ok {
		errs = append(errs, MissingParameter(path+".name"))
	} else if v.kind != kindString {
		errs = append(errs, InvalidValue(path+".name", "must be a string", v))
	} else if e := validateProviderName(path+".name", v.str); e != nil {
		errs = append(errs, *e)
	} else {
		p.Name = v.str
	}
	if v, ok := obj["type"]; !ok {
		errs = append(errs, MissingParameter(path+".type"))
	} else if v.kind != kindString || v.str != ProviderType {
		errs = append(errs, InvalidValue(path+".type", fmt.Sprintf("must be %q", ProviderType), v))
	} else {
		p.Type = v.str
	}
	if v, ok := obj["config"]; !ok {
		errs = append(errs, MissingParameter(path+".config"))
	} else {
		cfg, es := parseProviderConfig(path+".config", v)
		errs = append(errs, es...)
		p.Config = cfg
	}
	errs = append(errs, unknownKeys(path, n, "name", "type", "config")...)
	return p, errs
}

func parseProviderConfig(path string, n *node) (ProviderConfig, Errors) {
	var c ProviderConfig
	if n.kind != kindObject {
		return c, Errors{InvalidValue(path, `must be an object with "bearer" or "basic"`, n)}
	}
	var errs Errors
	obj := members(n)
	bearer, hasBearer := obj["bearer"]
	basic, hasBasic := obj["basic"]
	switch {
	case hasBearer && hasBasic:
		errs = append(errs, InvalidValue(path, "must hold exactly one of bearer or basic", "both"))
	case !hasBearer && !hasBasic:
		errs = append(errs, Error{
			Status:  http.StatusBadRequest,
			Code:    CodeMissingParameter,
			Title:   TitleMissingParameter,
			Details: path + ": required parameter is missing: one of bearer or basic",
		})
	case hasBearer:
		if e := nonEmptyString(path+".bearer", bearer); e != nil {
			errs = append(errs, *e)
		} else {
			c.Bearer = bearer.str
		}
	default:
		if basic.kind != kindObject {
			errs = append(errs, InvalidValue(path+".basic", `must be an object {"username", "password"}`, basic))
			break
		}
		b := members(basic)
		var auth BasicAuth
		for _, k := range []string{"username", "password"} {
			v, ok := b[k]
			if !ok {
				errs = append(errs, MissingParameter(path+".basic."+k))
				continue
			}
			if e := nonEmptyString(path+".basic."+k, v); e != nil {
				errs = append(errs, *e)
				continue
			}
			if k == "username" {
				auth.Username = v.str
			} else {
				auth.Password = v.str
			}
		}
		errs = append(errs, unknownKeys(path+".basic", basic, "username", "password")...)
		c.Basic = &auth
	}
	errs = append(errs, unknownKeys(path, n, "bearer", "basic")...)
	return c, errs
}

func nonEmptyString(path string, n *node) *Error {
	if n.kind != kindString || n.str == "" {
		e := InvalidValue(path, "must be a non-empty string", n)
		return &e
	}
	return nil
}

func members(n *node) map[string]*node {
	m := make(map[string]*node, len(n.members))
	for _, mb := range n.members {
		m[mb.key] = mb.val
	}
	return m
}

func unknownKeys(path string, n *node, known ...string) Errors {
	var errs Errors
	for _, mb := range n.members {
		if !inSet(known, mb.key) {
			errs = append(errs, NotRequired(truncate(path+"."+mb.key, maxGot+len(path)), "unknown field"))
		}
	}
	return errs
}
