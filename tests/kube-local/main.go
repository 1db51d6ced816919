// Command kube-local-apiserver is a single-process Kubernetes API server for tests, benchmarks and the demo.
//
// It is the upstream apiextensions-apiserver (CustomResourceDefinitions and custom resources with the real
// semantics: CEL and OpenAPI validation, status subresource, server-side apply, finalizers, watch with
// bookmarks) plus a handful of core types served from the same etcd through k8s.io/apiserver's generic
// registry (see core.go): core/v1 Secret, ConfigMap, Namespace, Event; events.k8s.io/v1 Event;
// coordination.k8s.io/v1 Lease. Discovery (/api, /apis) is stitched together in discovery.go.
//
// There is no authentication, no authorization, no admission plugin and no controller (no garbage collection,
// no namespace lifecycle). It is built and started by scripts/kube-local; flags are the usual apiserver ones
// (--etcd-servers, --secure-port, --bind-address, --tls-cert-file, --tls-private-key-file, ...).
package main

import (
	goflag "flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/spf13/pflag"
	noopoteltrace "go.opentelemetry.io/otel/trace/noop"

	"k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	netutils "k8s.io/utils/net"
)

// openAPIIgnoredPrefixes keeps the natively served core groups out of /openapi/v2 and /openapi/v3: their
// OpenAPI definitions live in k8s.io/kubernetes, which is not available to this build.
var openAPIIgnoredPrefixes = []string{"/api/", "/apis/coordination.k8s.io/", "/apis/events.k8s.io/"}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "kube-local-apiserver: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	o := options.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	fs := pflag.NewFlagSet("kube-local-apiserver", pflag.ContinueOnError)
	o.AddFlags(fs)
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlagSet(klogFlags)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if err := o.ServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}

	// Standalone: nobody to delegate authentication, authorization or admission to, and no core API server
	// whose informers these options would want.
	o.RecommendedOptions.Authentication = nil
	o.RecommendedOptions.Authorization = nil
	o.RecommendedOptions.Admission = nil
	o.RecommendedOptions.CoreAPI = nil
	// Priority-and-fairness needs informers on a core API server; a test server does not need it.
	o.RecommendedOptions.Features.EnablePriorityAndFairness = false

	if err := o.Complete(); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}

	config, err := newConfig(o)
	if err != nil {
		return err
	}
	core, err := newCoreAPI(o.RecommendedOptions.Etcd, config.GenericConfig)
	if err != nil {
		return err
	}
	disco := &discoveryHandler{}
	inner := config.GenericConfig.BuildHandlerChainFunc
	config.GenericConfig.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
		return inner(disco.wrap(h), c)
	}

	server, err := config.Complete().New(genericapiserver.NewEmptyDelegate())
	if err != nil {
		return err
	}
	disco.crds = server.Informers.Apiextensions().V1().CustomResourceDefinitions().Lister()
	if err := core.install(server.GenericAPIServer); err != nil {
		return err
	}
	server.GenericAPIServer.AddPostStartHookOrDie("kube-local-default-namespaces", core.createDefaultNamespaces)

	ctx := genericapiserver.SetupSignalContext()
	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

// newConfig is options.CustomResourceDefinitionsServerOptions.Config without the parts that need a core API
// server (its shared informer factory and service resolver), and with OpenAPI v2 configured as well as v3:
// the CRD OpenAPI publisher only runs when v2 is set, and kubectl's client-side validation reads it.
func newConfig(o *options.CustomResourceDefinitionsServerOptions) (*apiserver.Config, error) {
	if err := o.RecommendedOptions.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil,
		[]net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("error creating self-signed certificates: %w", err)
	}
	serverConfig := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	if err := o.ServerRunOptions.ApplyTo(&serverConfig.Config); err != nil {
		return nil, err
	}
	if err := o.RecommendedOptions.ApplyTo(serverConfig); err != nil {
		return nil, err
	}
	if err := o.APIEnablement.ApplyTo(&serverConfig.Config, apiserver.DefaultAPIResourceConfigSource(), apiserver.Scheme); err != nil {
		return nil, err
	}
	defs := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
	namer := openapinamer.NewDefinitionNamer(apiserver.Scheme, scheme.Scheme)
	serverConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(defs, namer)
	serverConfig.OpenAPIConfig.Info.Title = "kube-local"
	serverConfig.OpenAPIConfig.IgnorePrefixes = openAPIIgnoredPrefixes
	serverConfig.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(defs, namer)
	serverConfig.OpenAPIV3Config.Info.Title = "kube-local"
	serverConfig.OpenAPIV3Config.IgnorePrefixes = openAPIIgnoredPrefixes

	return &apiserver.Config{
		GenericConfig: serverConfig,
		ExtraConfig: apiserver.ExtraConfig{
			CRDRESTOptionsGetter: options.NewCRDRESTOptionsGetter(*o.RecommendedOptions.Etcd,
				serverConfig.ResourceTransformers, serverConfig.StorageObjectCountTracker),
			ServiceResolver: noServices{},
			AuthResolverWrapper: webhook.NewDefaultAuthenticationInfoResolverWrapper(nil, nil,
				serverConfig.LoopbackClientConfig, noopoteltrace.NewTracerProvider()),
		},
	}, nil
}
