package main

// Small registry strategies standing in for kube-apiserver's (which live in k8s.io/kubernetes). Each keeps
// the behaviour that clients observe: defaults, the validations that matter to callers, immutability,
// create-on-update where kube-apiserver allows it.

import (
	"context"
	"fmt"
	"reflect"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/names"
)

// strategy implements rest.RESTCreateStrategy, rest.RESTUpdateStrategy and rest.RESTDeleteStrategy from a few
// per-type hooks.
type strategy struct {
	runtime.ObjectTyper
	names.NameGenerator

	namespaced     bool
	createOnUpdate bool
	nameFn         apimachineryvalidation.ValidateNameFunc
	prepare        func(obj, old runtime.Object) // old is nil on create
	validate       func(obj runtime.Object) field.ErrorList
	validateUpdate func(obj, old runtime.Object) field.ErrorList
}

func newStrategy(namespaced bool) *strategy {
	return &strategy{
		ObjectTyper:   coreScheme,
		NameGenerator: names.SimpleNameGenerator,
		namespaced:    namespaced,
		nameFn:        apimachineryvalidation.NameIsDNSSubdomain,
	}
}

func (s *strategy) NamespaceScoped() bool          { return s.namespaced }
func (s *strategy) AllowCreateOnUpdate() bool      { return s.createOnUpdate }
func (s *strategy) AllowUnconditionalUpdate() bool { return true }
func (s *strategy) Canonicalize(runtime.Object)    {}

func (s *strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	if s.prepare != nil {
		s.prepare(obj, nil)
	}
}

func (s *strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	if s.prepare != nil {
		s.prepare(obj, old)
	}
}

func (s *strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	m, ok := obj.(metav1.Object)
	if !ok {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("%T has no object metadata", obj))}
	}
	errs := apimachineryvalidation.ValidateObjectMetaAccessor(m, s.namespaced, s.nameFn, field.NewPath("metadata"))
	if s.validate != nil {
		errs = append(errs, s.validate(obj)...)
	}
	return errs
}

func (s *strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	m, ok1 := obj.(metav1.Object)
	o, ok2 := old.(metav1.Object)
	if !ok1 || !ok2 {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("%T has no object metadata", obj))}
	}
	errs := apimachineryvalidation.ValidateObjectMetaAccessorUpdate(m, o, field.NewPath("metadata"))
	if s.validate != nil {
		errs = append(errs, s.validate(obj)...)
	}
	if s.validateUpdate != nil {
		errs = append(errs, s.validateUpdate(obj, old)...)
	}
	return errs
}

func (s *strategy) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }
func (s *strategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}

// validateKeys checks data keys as kube-apiserver does for Secrets and ConfigMaps.
func validateKeys(path *field.Path, keys []string) field.ErrorList {
	var errs field.ErrorList
	for _, k := range keys {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(path.Key(k), k, msg))
		}
	}
	return errs
}

func secretStrategy() *strategy {
	s := newStrategy(true)
	s.prepare = func(obj, _ runtime.Object) {
		secret := obj.(*corev1.Secret)
		// In kube-apiserver this happens in conversion to the internal type, which has no stringData.
		if len(secret.StringData) > 0 {
			if secret.Data == nil {
				secret.Data = map[string][]byte{}
			}
			for k, v := range secret.StringData {
				secret.Data[k] = []byte(v)
			}
			secret.StringData = nil
		}
		if secret.Type == "" {
			secret.Type = corev1.SecretTypeOpaque
		}
	}
	s.validate = func(obj runtime.Object) field.ErrorList {
		secret := obj.(*corev1.Secret)
		keys := make([]string, 0, len(secret.Data))
		total := 0
		for k, v := range secret.Data {
			keys = append(keys, k)
			total += len(k) + len(v)
		}
		errs := validateKeys(field.NewPath("data"), keys)
		if total > corev1.MaxSecretSize {
			errs = append(errs, field.TooLong(field.NewPath("data"), "", corev1.MaxSecretSize))
		}
		return errs
	}
	s.validateUpdate = func(obj, old runtime.Object) field.ErrorList {
		secret, oldSecret := obj.(*corev1.Secret), old.(*corev1.Secret)
		var errs field.ErrorList
		if secret.Type != oldSecret.Type {
			errs = append(errs, field.Invalid(field.NewPath("type"), secret.Type, "field is immutable"))
		}
		errs = append(errs, validateImmutable(oldSecret.Immutable, secret.Immutable,
			!reflect.DeepEqual(secret.Data, oldSecret.Data))...)
		return errs
	}
	return s
}

func configMapStrategy() *strategy {
	s := newStrategy(true)
	s.validate = func(obj runtime.Object) field.ErrorList {
		cm := obj.(*corev1.ConfigMap)
		var keys []string
		var errs field.ErrorList
		for k := range cm.Data {
			keys = append(keys, k)
		}
		for k := range cm.BinaryData {
			if _, dup := cm.Data[k]; dup {
				errs = append(errs, field.Invalid(field.NewPath("binaryData").Key(k), k,
					"duplicate of key present in data"))
			}
			keys = append(keys, k)
		}
		return append(errs, validateKeys(field.NewPath("data"), keys)...)
	}
	s.validateUpdate = func(obj, old runtime.Object) field.ErrorList {
		cm, oldCM := obj.(*corev1.ConfigMap), old.(*corev1.ConfigMap)
		changed := !reflect.DeepEqual(cm.Data, oldCM.Data) || !reflect.DeepEqual(cm.BinaryData, oldCM.BinaryData)
		return validateImmutable(oldCM.Immutable, cm.Immutable, changed)
	}
	return s
}

// validateImmutable enforces the `immutable: true` contract of Secrets and ConfigMaps.
func validateImmutable(oldImmutable, newImmutable *bool, dataChanged bool) field.ErrorList {
	if oldImmutable == nil || !*oldImmutable {
		return nil
	}
	var errs field.ErrorList
	if newImmutable == nil || !*newImmutable {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
	}
	if dataChanged {
		errs = append(errs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
	}
	return errs
}

func namespaceStrategy() *strategy {
	s := newStrategy(false)
	s.nameFn = apimachineryvalidation.ValidateNamespaceName
	s.prepare = func(obj, old runtime.Object) {
		ns := obj.(*corev1.Namespace)
		if old == nil {
			// No namespace controller runs here, so no "kubernetes" finalizer: deletion is immediate and
			// does not cascade to the namespace's objects.
			ns.Spec.Finalizers = nil
			ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
		} else {
			ns.Spec = old.(*corev1.Namespace).Spec
			ns.Status = old.(*corev1.Namespace).Status
		}
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	return s
}

func leaseStrategy() *strategy {
	s := newStrategy(true)
	s.createOnUpdate = true
	s.validate = func(obj runtime.Object) field.ErrorList {
		lease := obj.(*coordinationv1.Lease)
		var errs field.ErrorList
		if d := lease.Spec.LeaseDurationSeconds; d != nil && *d <= 0 {
			errs = append(errs, field.Invalid(field.NewPath("spec", "leaseDurationSeconds"), *d, "must be greater than 0"))
		}
		if t := lease.Spec.LeaseTransitions; t != nil && *t < 0 {
			errs = append(errs, field.Invalid(field.NewPath("spec", "leaseTransitions"), *t, "must be greater than or equal to 0"))
		}
		return errs
	}
	return s
}

func eventStrategy() *strategy {
	s := newStrategy(true)
	s.createOnUpdate = true
	s.validate = func(obj runtime.Object) field.ErrorList {
		ev := obj.(*corev1.Event)
		var errs field.ErrorList
		if ev.InvolvedObject.Namespace != "" && ev.InvolvedObject.Namespace != ev.Namespace &&
			ev.Namespace != metav1.NamespaceDefault {
			errs = append(errs, field.Invalid(field.NewPath("involvedObject", "namespace"),
				ev.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		return errs
	}
	return s
}

// attrFuncFor builds a storage.AttrFunc: labels from the object metadata, fields from fn plus metadata.
func attrFuncFor(fn func(runtime.Object) (map[string]string, error)) storage.AttrFunc {
	return func(obj runtime.Object) (labels.Set, fields.Set, error) {
		m, ok := obj.(metav1.Object)
		if !ok {
			return nil, nil, fmt.Errorf("%T has no object metadata", obj)
		}
		f, err := fn(obj)
		if err != nil {
			return nil, nil, err
		}
		set := fields.Set{"metadata.name": m.GetName()}
		if m.GetNamespace() != "" {
			set["metadata.namespace"] = m.GetNamespace()
		}
		for k, v := range f {
			set[k] = v
		}
		return labels.Set(m.GetLabels()), set, nil
	}
}

func secretFields(obj runtime.Object) (map[string]string, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return nil, fmt.Errorf("not a Secret: %T", obj)
	}
	return map[string]string{"type": string(s.Type)}, nil
}

func namespaceFields(obj runtime.Object) (map[string]string, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return nil, fmt.Errorf("not a Namespace: %T", obj)
	}
	return map[string]string{"status.phase": string(ns.Status.Phase)}, nil
}

func eventFields(obj runtime.Object) (map[string]string, error) {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return nil, fmt.Errorf("not an Event: %T", obj)
	}
	return map[string]string{
		"involvedObject.kind":            ev.InvolvedObject.Kind,
		"involvedObject.namespace":       ev.InvolvedObject.Namespace,
		"involvedObject.name":            ev.InvolvedObject.Name,
		"involvedObject.uid":             string(ev.InvolvedObject.UID),
		"involvedObject.apiVersion":      ev.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": ev.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       ev.InvolvedObject.FieldPath,
		"reason":                         ev.Reason,
		"reportingComponent":             ev.ReportingController,
		"source":                         ev.Source.Component,
		"type":                           ev.Type,
	}, nil
}
