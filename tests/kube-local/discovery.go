package main

// Legacy discovery for a server that is both "core" and "apiextensions". In a real cluster the aggregator
// merges kube-apiserver's and apiextensions-apiserver's discovery; here this handler answers
//   GET /api  -> APIVersions{v1}            (core/v1 resources are served at /api/v1 by InstallREST)
//   GET /apis -> APIGroupList               (apiextensions.k8s.io, the built-in groups of core.go and every
//                                           Established CRD's served versions)
// Clients that ask for aggregated discovery get the legacy documents (with a plain JSON content type) and
// fall back, as kubectl and client-go do against servers without aggregated discovery.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"

	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	listers "k8s.io/apiextensions-apiserver/pkg/client/listers/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/version"
)

type discoveryHandler struct {
	// crds is set once the apiextensions server exists, before the server starts serving.
	crds listers.CustomResourceDefinitionLister
}

func (d *discoveryHandler) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			switch r.URL.Path {
			case "/api", "/api/":
				writeJSON(w, metav1.APIVersions{
					TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
					Versions: []string{"v1"},
					ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{
						{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host},
					},
				})
				return
			case "/apis", "/apis/":
				groups, err := d.groups()
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				writeJSON(w, metav1.APIGroupList{
					TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
					Groups:   groups,
				})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

func (d *discoveryHandler) groups() ([]metav1.APIGroup, error) {
	groups := []metav1.APIGroup{
		builtinGroup(apiextensionsv1.SchemeGroupVersion),
		builtinGroup(coordinationGV),
		builtinGroup(eventsGV),
	}
	if d.crds == nil {
		return groups, nil
	}
	crds, err := d.crds.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	versionsByGroup := map[string]map[string]bool{}
	for _, crd := range crds {
		if !apihelpers.IsCRDConditionTrue(crd, apiextensionsv1.Established) {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			if versionsByGroup[crd.Spec.Group] == nil {
				versionsByGroup[crd.Spec.Group] = map[string]bool{}
			}
			versionsByGroup[crd.Spec.Group][v.Name] = true
		}
	}
	names := make([]string, 0, len(versionsByGroup))
	for g := range versionsByGroup {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		var versions []string
		for v := range versionsByGroup[g] {
			versions = append(versions, v)
		}
		// Highest kube-aware version first (v2 > v1 > v1beta1 > v1alpha1), as apiextensions does.
		sort.Slice(versions, func(i, j int) bool {
			return version.CompareKubeAwareVersionStrings(versions[i], versions[j]) > 0
		})
		merged := false
		for i := range groups {
			if groups[i].Name == g {
				merged = true
				for _, v := range versions {
					groups[i].Versions = append(groups[i].Versions,
						metav1.GroupVersionForDiscovery{GroupVersion: g + "/" + v, Version: v})
				}
			}
		}
		if merged {
			continue
		}
		group := metav1.APIGroup{Name: g}
		for _, v := range versions {
			group.Versions = append(group.Versions, metav1.GroupVersionForDiscovery{GroupVersion: g + "/" + v, Version: v})
		}
		group.PreferredVersion = group.Versions[0]
		groups = append(groups, group)
	}
	return groups, nil
}

// noServices resolves no webhook service: there are no Services in this server.
type noServices struct{}

func (noServices) ResolveEndpoint(namespace, name string, port int32) (*url.URL, error) {
	return nil, errNoServices
}

var errNoServices = errorString("kube-local serves no Services: webhook conversion by service reference is unavailable")

type errorString string

func (e errorString) Error() string { return string(e) }
