package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// unknownFields reports every mapping key in n that t has no field for,
// by its path in the file (credentials[0]: unknown field "scret"). The
// decoder refuses them too, but names only a Go type, which tells the
// reader neither which credential nor which section is wrong.
func unknownFields(n *yaml.Node, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var errs []error
	switch {
	case n.Kind == yaml.DocumentNode:
		for _, c := range n.Content {
			errs = append(errs, unknownFields(c, t, path)...)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				continue // a merge: the decoder checks what it brings in
			}
			ft, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown field %q (line %d)", k.Value, k.Line)
				if path != "" {
					msg = path + ": " + msg
				}
				errs = append(errs, errors.New(msg))
				continue
			}
			sub := k.Value
			if path != "" {
				sub = path + "." + k.Value
			}
			errs = append(errs, unknownFields(v, ft, sub)...)
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, c := range n.Content {
			errs = append(errs, unknownFields(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return errs
}

// yamlFields maps the YAML keys of struct t to their fields' types, as
// yaml.v3 names them: the tag's name, else the lower-cased field name;
// inline structs contribute their own keys.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}
