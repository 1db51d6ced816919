package main

// Core types served from etcd beside the CRDs: core/v1 Secret, ConfigMap, Namespace, Event;
// events.k8s.io/v1 Event; coordination.k8s.io/v1 Lease.
//
// kube-apiserver's own internal types and registry strategies live in k8s.io/kubernetes, which this build does
// not have. Instead the versioned k8s.io/api types are registered a second time as the internal version (so
// "conversion" to internal is a no-op), and each resource gets a small strategy (strategy.go) with the
// behaviour clients rely on. events.k8s.io/v1 Events are stored as core/v1 Events in one shared store, with a
// hand-written conversion (events.go), exactly as kube-apiserver stores them.

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	genericapi "k8s.io/apiserver/pkg/endpoints"
	"k8s.io/apiserver/pkg/endpoints/discovery"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/applyconfigurations"
)

var (
	coreScheme = runtime.NewScheme()
	coreCodecs = serializer.NewCodecFactory(coreScheme)

	coreGV         = corev1.SchemeGroupVersion
	coordinationGV = coordinationv1.SchemeGroupVersion
	eventsGV       = eventsv1.SchemeGroupVersion
)

// internal returns the internal version of a group.
func internal(gv schema.GroupVersion) schema.GroupVersion {
	return schema.GroupVersion{Group: gv.Group, Version: runtime.APIVersionInternal}
}

func init() {
	if err := buildScheme(coreScheme); err != nil {
		panic(err)
	}
}

func buildScheme(s *runtime.Scheme) error {
	coreTypes := []runtime.Object{
		&corev1.Secret{}, &corev1.SecretList{},
		&corev1.ConfigMap{}, &corev1.ConfigMapList{},
		&corev1.Namespace{}, &corev1.NamespaceList{},
		&corev1.Event{}, &corev1.EventList{},
	}
	s.AddKnownTypes(coreGV, coreTypes...)
	s.AddKnownTypes(internal(coreGV), coreTypes...)
	metav1.AddToGroupVersion(s, coreGV)

	s.AddKnownTypes(coordinationGV, &coordinationv1.Lease{}, &coordinationv1.LeaseList{})
	s.AddKnownTypes(internal(coordinationGV), &coordinationv1.Lease{}, &coordinationv1.LeaseList{})
	metav1.AddToGroupVersion(s, coordinationGV)

	// events.k8s.io's internal version is core's Event, as in kube-apiserver.
	s.AddKnownTypes(eventsGV, &eventsv1.Event{}, &eventsv1.EventList{})
	s.AddKnownTypes(internal(eventsGV), &corev1.Event{}, &corev1.EventList{})
	metav1.AddToGroupVersion(s, eventsGV)
	if err := addEventConversions(s); err != nil {
		return err
	}
	return addFieldLabelConversions(s)
}

// coreAPI holds the stores and knows how to install them into the apiextensions server's handler.
type coreAPI struct {
	namespaces *genericregistry.Store
	groups     []groupVersionStorage
}

type groupVersionStorage struct {
	root    string
	gv      schema.GroupVersion
	storage map[string]rest.Storage
}

func newCoreAPI(etcd *genericoptions.EtcdOptions, cfg *genericapiserver.RecommendedConfig) (*coreAPI, error) {
	etcdCopy := *etcd
	storageConfig := etcdCopy.StorageConfig
	storageConfig.Prefix = "/registry/kube-local"
	storageConfig.Codec = coreCodecs.LegacyCodec(coreGV, coordinationGV)
	storageConfig.StorageObjectCountTracker = cfg.StorageObjectCountTracker
	etcdCopy.StorageConfig = storageConfig
	etcdCopy.WatchCacheSizes = nil
	getter := etcdCopy.CreateRESTOptionsGetter(&genericoptions.SimpleStorageFactory{StorageConfig: storageConfig},
		cfg.ResourceTransformers)

	mk := func(resource, singular string, group string, newFn, newListFn func() runtime.Object,
		st *strategy, attrs func(runtime.Object) (map[string]string, error)) (*genericregistry.Store, error) {
		gr := schema.GroupResource{Group: group, Resource: resource}
		store := &genericregistry.Store{
			NewFunc:                   newFn,
			NewListFunc:               newListFn,
			DefaultQualifiedResource:  gr,
			SingularQualifiedResource: schema.GroupResource{Group: group, Resource: singular},
			CreateStrategy:            st,
			UpdateStrategy:            st,
			DeleteStrategy:            st,
			TableConvertor:            rest.NewDefaultTableConvertor(gr),
		}
		opts := &generic.StoreOptions{RESTOptions: getter}
		if attrs != nil {
			opts.AttrFunc = attrFuncFor(attrs)
		}
		if err := store.CompleteWithOptions(opts); err != nil {
			return nil, fmt.Errorf("%s: %w", gr, err)
		}
		return store, nil
	}

	secrets, err := mk("secrets", "secret", "",
		func() runtime.Object { return &corev1.Secret{} }, func() runtime.Object { return &corev1.SecretList{} },
		secretStrategy(), secretFields)
	if err != nil {
		return nil, err
	}
	configMaps, err := mk("configmaps", "configmap", "",
		func() runtime.Object { return &corev1.ConfigMap{} }, func() runtime.Object { return &corev1.ConfigMapList{} },
		configMapStrategy(), nil)
	if err != nil {
		return nil, err
	}
	namespaces, err := mk("namespaces", "namespace", "",
		func() runtime.Object { return &corev1.Namespace{} }, func() runtime.Object { return &corev1.NamespaceList{} },
		namespaceStrategy(), namespaceFields)
	if err != nil {
		return nil, err
	}
	events, err := mk("events", "event", "",
		func() runtime.Object { return &corev1.Event{} }, func() runtime.Object { return &corev1.EventList{} },
		eventStrategy(), eventFields)
	if err != nil {
		return nil, err
	}
	leases, err := mk("leases", "lease", coordinationGV.Group,
		func() runtime.Object { return &coordinationv1.Lease{} }, func() runtime.Object { return &coordinationv1.LeaseList{} },
		leaseStrategy(), nil)
	if err != nil {
		return nil, err
	}

	return &coreAPI{
		namespaces: namespaces,
		groups: []groupVersionStorage{
			{root: "/api", gv: coreGV, storage: map[string]rest.Storage{
				"secrets":    secrets,
				"configmaps": withShortNames{configMaps, []string{"cm"}},
				"namespaces": withShortNames{namespaces, []string{"ns"}},
				"events":     withShortNames{events, []string{"ev"}},
			}},
			{root: "/apis", gv: coordinationGV, storage: map[string]rest.Storage{"leases": leases}},
			// The same store as core/v1 events; the request scope converts between the two versions.
			{root: "/apis", gv: eventsGV, storage: map[string]rest.Storage{"events": withShortNames{events, []string{"ev"}}}},
		},
	}, nil
}

// install registers the REST endpoints and the per-group discovery documents on the server's go-restful
// container. The core SSA type converter comes from client-go's applyconfigurations (which embed the
// OpenAPI schemas of every k8s.io/api type), since kube-apiserver's generated OpenAPI is unavailable.
func (c *coreAPI) install(s *genericapiserver.GenericAPIServer) error {
	typeConverter := applyconfigurations.NewTypeConverter(coreScheme)
	for _, g := range c.groups {
		servedVersions := map[string][]string{}
		for resource := range g.storage {
			v := g.gv.Version
			if g.gv.Group != "" {
				v = g.gv.String()
			}
			servedVersions[resource] = []string{v}
		}
		agv := &genericapi.APIGroupVersion{
			Storage:                     g.storage,
			Root:                        g.root,
			GroupVersion:                g.gv,
			AllServedVersionsByResource: servedVersions,
			OptionsExternalVersion:      &schema.GroupVersion{Version: "v1"},
			Serializer:                  coreCodecs,
			ParameterCodec:              runtime.NewParameterCodec(coreScheme),
			Typer:                       coreScheme,
			Creater:                     coreScheme,
			Convertor:                   coreScheme,
			ConvertabilityChecker:       coreScheme,
			Defaulter:                   coreScheme,
			Namer:                       runtime.Namer(meta.NewAccessor()),
			UnsafeConvertor:             runtime.UnsafeObjectConvertor(coreScheme),
			TypeConverter:               typeConverter,
			EquivalentResourceRegistry:  s.EquivalentResourceRegistry,
			Authorizer:                  authorizerfactory.NewAlwaysAllowAuthorizer(),
			MinRequestTimeout:           30 * time.Minute,
			MaxRequestBodyBytes:         3 * 1024 * 1024,
		}
		if _, _, err := agv.InstallREST(s.Handler.GoRestfulContainer); err != nil {
			return fmt.Errorf("installing %s: %w", g.gv, err)
		}
		if g.gv.Group != "" {
			s.Handler.GoRestfulContainer.Add(discovery.NewAPIGroupHandler(coreCodecs, builtinGroup(g.gv)).WebService())
		}
	}
	return nil
}

func builtinGroup(gv schema.GroupVersion) metav1.APIGroup {
	v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
	return metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v}
}

// defaultNamespaces are the namespaces every cluster has.
var defaultNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease"}

// createDefaultNamespaces runs as a post-start hook, so /readyz only passes once they exist.
func (c *coreAPI) createDefaultNamespaces(hookCtx genericapiserver.PostStartHookContext) error {
	for _, name := range defaultNamespaces {
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(genericapirequest.WithNamespace(genericapirequest.NewContext(), ""), 10*time.Second)
			_, err := c.namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}},
				rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
			cancel()
			if err == nil || apierrors.IsAlreadyExists(err) {
				break
			}
			if attempt >= 50 {
				return fmt.Errorf("creating namespace %s: %w", name, err)
			}
			select {
			case <-hookCtx.Done():
				return hookCtx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// withShortNames adds the short names kubectl knows these resources by (`kubectl get ns`).
type withShortNames struct {
	*genericregistry.Store
	shortNames []string
}

var _ rest.ShortNamesProvider = withShortNames{}

func (w withShortNames) ShortNames() []string { return w.shortNames }
