package main

// events.k8s.io/v1 Event <-> core/v1 Event (the shared internal/storage type), after kube-apiserver's
// pkg/apis/events/v1/conversion.go, plus the field selectors both versions accept.

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func eventsV1ToCore(in *eventsv1.Event, out *corev1.Event) {
	*out = corev1.Event{
		TypeMeta:            in.TypeMeta,
		ObjectMeta:          in.ObjectMeta,
		InvolvedObject:      in.Regarding,
		Reason:              in.Reason,
		Message:             in.Note,
		Source:              in.DeprecatedSource,
		FirstTimestamp:      in.DeprecatedFirstTimestamp,
		LastTimestamp:       in.DeprecatedLastTimestamp,
		Count:               in.DeprecatedCount,
		Type:                in.Type,
		EventTime:           in.EventTime,
		Related:             in.Related,
		Action:              in.Action,
		ReportingController: in.ReportingController,
		ReportingInstance:   in.ReportingInstance,
	}
	if in.Series != nil {
		out.Series = &corev1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
}

func coreToEventsV1(in *corev1.Event, out *eventsv1.Event) {
	*out = eventsv1.Event{
		TypeMeta:                 in.TypeMeta,
		ObjectMeta:               in.ObjectMeta,
		EventTime:                in.EventTime,
		ReportingController:      in.ReportingController,
		ReportingInstance:        in.ReportingInstance,
		Action:                   in.Action,
		Reason:                   in.Reason,
		Regarding:                in.InvolvedObject,
		Related:                  in.Related,
		Note:                     in.Message,
		Type:                     in.Type,
		DeprecatedSource:         in.Source,
		DeprecatedFirstTimestamp: in.FirstTimestamp,
		DeprecatedLastTimestamp:  in.LastTimestamp,
		DeprecatedCount:          in.Count,
	}
	if in.Series != nil {
		out.Series = &eventsv1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
}

func addEventConversions(s *runtime.Scheme) error {
	if err := s.AddConversionFunc((*eventsv1.Event)(nil), (*corev1.Event)(nil), func(a, b interface{}, _ conversion.Scope) error {
		eventsV1ToCore(a.(*eventsv1.Event), b.(*corev1.Event))
		return nil
	}); err != nil {
		return err
	}
	if err := s.AddConversionFunc((*corev1.Event)(nil), (*eventsv1.Event)(nil), func(a, b interface{}, _ conversion.Scope) error {
		coreToEventsV1(a.(*corev1.Event), b.(*eventsv1.Event))
		return nil
	}); err != nil {
		return err
	}
	if err := s.AddConversionFunc((*eventsv1.EventList)(nil), (*corev1.EventList)(nil), func(a, b interface{}, _ conversion.Scope) error {
		in, out := a.(*eventsv1.EventList), b.(*corev1.EventList)
		out.TypeMeta, out.ListMeta = in.TypeMeta, in.ListMeta
		out.Items = make([]corev1.Event, len(in.Items))
		for i := range in.Items {
			eventsV1ToCore(&in.Items[i], &out.Items[i])
		}
		return nil
	}); err != nil {
		return err
	}
	return s.AddConversionFunc((*corev1.EventList)(nil), (*eventsv1.EventList)(nil), func(a, b interface{}, _ conversion.Scope) error {
		in, out := a.(*corev1.EventList), b.(*eventsv1.EventList)
		out.TypeMeta, out.ListMeta = in.TypeMeta, in.ListMeta
		out.Items = make([]eventsv1.Event, len(in.Items))
		for i := range in.Items {
			coreToEventsV1(&in.Items[i], &out.Items[i])
		}
		return nil
	})
}

// addFieldLabelConversions declares the field selectors each served kind accepts, mapped to the storage
// field names of eventFields/secretFields/namespaceFields.
func addFieldLabelConversions(s *runtime.Scheme) error {
	allow := func(extra map[string]string) func(label, value string) (string, string, error) {
		return func(label, value string) (string, string, error) {
			switch label {
			case "metadata.name", "metadata.namespace":
				return label, value, nil
			}
			if internalLabel, ok := extra[label]; ok {
				return internalLabel, value, nil
			}
			return "", "", fmt.Errorf("field label not supported: %s", label)
		}
	}
	same := func(labels ...string) map[string]string {
		m := map[string]string{}
		for _, l := range labels {
			m[l] = l
		}
		return m
	}
	coreEvent := same("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
		"involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
		"involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")
	eventsV1 := map[string]string{
		"regarding.kind":             "involvedObject.kind",
		"regarding.namespace":        "involvedObject.namespace",
		"regarding.name":             "involvedObject.name",
		"regarding.uid":              "involvedObject.uid",
		"regarding.apiVersion":       "involvedObject.apiVersion",
		"regarding.resourceVersion":  "involvedObject.resourceVersion",
		"regarding.fieldPath":        "involvedObject.fieldPath",
		"reason":                     "reason",
		"reportingController":        "reportingComponent",
		"type":                       "type",
		"deprecatedSource.component": "source",
	}
	for gvk, extra := range map[[2]string]map[string]string{
		{coreGV.String(), "Event"}:         coreEvent,
		{coreGV.String(), "Secret"}:        same("type"),
		{coreGV.String(), "Namespace"}:     same("status.phase"),
		{coreGV.String(), "ConfigMap"}:     nil,
		{eventsGV.String(), "Event"}:       eventsV1,
		{coordinationGV.String(), "Lease"}: nil,
	} {
		gv, err := schema.ParseGroupVersion(gvk[0])
		if err != nil {
			return err
		}
		if err := s.AddFieldLabelConversionFunc(gv.WithKind(gvk[1]), allow(extra)); err != nil {
			return err
		}
	}
	return nil
}
