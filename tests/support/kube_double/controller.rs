//! A stepped stand-in for the controllers stateplan waits on: the
//! StatefulSet controller (pods, PVCs, status, rolling update, scale down),
//! the scheduler/kubelet (pod readiness and failures), the PV controller
//! (binding, resize), External Secrets (status, target Secret) and the
//! disruption controller (PDB status). Deterministic: one `tick` = one pass.

use super::{Key, State, Stored, util};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

const MANAGER: &str = "kube-controller-manager";

/// A failure to simulate for a pod.
#[derive(Clone, Debug, PartialEq)]
pub enum PodFault {
    /// PodScheduled=False with this scheduler message, plus a
    /// `FailedScheduling` event.
    Unschedulable(String),
    /// The first container restarts in a loop (`CrashLoopBackOff`).
    CrashLoopBackOff,
    /// The image cannot be pulled (`ImagePullBackOff`).
    ImagePullBackOff,
}

#[derive(Default)]
pub struct CtlState {
    pub pod_faults: HashMap<(String, String), PodFault>,
    pub pvc_faults: HashMap<(String, String), String>,
    pub es_faults: HashMap<(String, String), String>,
    emitted: HashSet<String>,
    event_seq: u64,
}

fn key(group: &str, plural: &str, ns: &str, name: &str) -> Key {
    (group.into(), plural.into(), ns.into(), name.into())
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

impl State {
    fn keys_of(&self, group: &str, plural: &str) -> Vec<Key> {
        self.objects
            .keys()
            .filter(|k| k.0 == group && k.1 == plural)
            .cloned()
            .collect()
    }

    fn obj(&self, k: &Key) -> Option<Value> {
        self.objects.get(k).map(|s| s.obj.clone())
    }

    /// A controller write (no validation/admission). Returns whether it changed.
    fn ctl_update(&mut self, k: &Key, new_obj: Value, sub: Option<&str>) -> bool {
        let Some(ti) = self.type_of_plural(&k.0, &k.1) else {
            return false;
        };
        let Some(old) = self.objects.get(k).cloned() else {
            return false;
        };
        if old.obj == new_obj {
            return false;
        }
        let mut managed = old.managed.clone();
        self.update_managed(ti, &mut managed, Some(&old.obj), &new_obj, MANAGER, sub);
        self.skip_validation = true;
        let r = self.commit(
            ti,
            k.clone(),
            Stored {
                obj: new_obj,
                managed,
            },
            Some(&old),
            false,
        );
        self.skip_validation = false;
        r.is_ok()
    }

    fn ctl_create(&mut self, obj: Value) -> bool {
        let Ok((ti, k)) = self.locate(&obj) else {
            return false;
        };
        if self.objects.contains_key(&k) {
            return false;
        }
        let ns = (!k.2.is_empty()).then(|| k.2.clone());
        let status = obj.get("status").cloned();
        let ok = self.create(ti, ns.as_deref(), obj, MANAGER, false).is_ok();
        if ok && let Some(st) = status {
            // Controllers write status together with the object here.
            if let Some(mut cur) = self.obj(&k) {
                cur["status"] = st;
                self.ctl_update(&k, cur, Some("status"));
            }
        }
        ok
    }

    /// Records an Event once per (object, reason).
    fn event(
        &mut self,
        involved: &Value,
        kind: &str,
        reason: &str,
        ty: &str,
        message: &str,
        component: &str,
    ) {
        let ns = s(involved, "/metadata/namespace").to_string();
        let name = s(involved, "/metadata/name").to_string();
        let dedupe = format!("{ns}/{kind}/{name}/{reason}/{message}");
        if !self.ctl.emitted.insert(dedupe) {
            return;
        }
        self.ctl.event_seq += 1;
        let ts = self.now();
        let ev = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{:016x}", util::fnv(&self.ctl.event_seq.to_le_bytes())), "namespace": ns},
            "involvedObject": {
                "kind": kind, "namespace": ns, "name": name,
                "uid": s(involved, "/metadata/uid"),
                "apiVersion": involved.get("apiVersion").cloned().unwrap_or(json!("v1")),
                "resourceVersion": s(involved, "/metadata/resourceVersion"),
            },
            "reason": reason, "message": message, "type": ty,
            "source": {"component": component},
            "firstTimestamp": ts, "lastTimestamp": ts, "count": 1,
            "reportingComponent": component, "reportingInstance": "",
        });
        let _ = self.ctl_create(ev);
    }

    pub(super) fn tick(&mut self) -> bool {
        let mut changed = false;
        changed |= self.reconcile_pvcs();
        changed |= self.reconcile_pods();
        for k in self.keys_of("apps", "statefulsets") {
            changed |= self.reconcile_sts(&k);
        }
        changed |= self.reconcile_external_secrets();
        changed |= self.reconcile_pdbs();
        changed
    }

    fn reconcile_pvcs(&mut self) -> bool {
        let mut changed = false;
        for k in self.keys_of("", "persistentvolumeclaims") {
            let Some(pvc) = self.obj(&k) else { continue };
            let rendered = self.rendered(&k);
            let phase = s(&pvc, "/status/phase").to_string();
            if phase != "Bound" {
                if let Some(msg) = self
                    .ctl
                    .pvc_faults
                    .get(&(k.2.clone(), k.3.clone()))
                    .cloned()
                {
                    self.event(
                        &rendered,
                        "PersistentVolumeClaim",
                        "ProvisioningFailed",
                        "Warning",
                        &msg,
                        "persistentvolume-controller",
                    );
                    continue;
                }
                let class_name = pvc
                    .pointer("/spec/storageClassName")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .or_else(|| self.default_class());
                let Some(class_name) = class_name else {
                    continue;
                };
                let Some(class) = self.storage_class(&class_name) else {
                    let msg = format!("storageclass.storage.k8s.io \"{class_name}\" not found");
                    self.event(
                        &rendered,
                        "PersistentVolumeClaim",
                        "ProvisioningFailed",
                        "Warning",
                        &msg,
                        "persistentvolume-controller",
                    );
                    continue;
                };
                if s(&class, "/volumeBindingMode") == "WaitForFirstConsumer" && !self.pvc_in_use(&k)
                {
                    self.event(
                        &rendered,
                        "PersistentVolumeClaim",
                        "WaitForFirstConsumer",
                        "Normal",
                        "waiting for first consumer to be created before binding",
                        "persistentvolume-controller",
                    );
                    continue;
                }
                let provisioner = s(&class, "/provisioner").to_string();
                let mut new = pvc.clone();
                let uid = s(&pvc, "/metadata/uid").to_string();
                new["spec"]["volumeName"] = json!(format!("pvc-{uid}"));
                if new.pointer("/spec/storageClassName").is_none() {
                    new["spec"]["storageClassName"] = json!(class_name);
                }
                let ann = util::at_mut(&mut new, &["metadata", "annotations"]);
                if !ann.is_object() {
                    *ann = json!({});
                }
                ann["pv.kubernetes.io/bind-completed"] = json!("yes");
                ann["pv.kubernetes.io/bound-by-controller"] = json!("yes");
                ann["volume.beta.kubernetes.io/storage-provisioner"] = json!(provisioner);
                ann["volume.kubernetes.io/storage-provisioner"] = json!(provisioner);
                changed |= self.ctl_update(&k, new.clone(), None);
                let mut st = new.clone();
                st["status"] = json!({
                    "phase": "Bound",
                    "accessModes": pvc.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
                    "capacity": {"storage": pvc.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("1Gi"))},
                });
                if let Some(cur) = self.obj(&k) {
                    let mut cur = cur;
                    cur["status"] = st["status"].clone();
                    changed |= self.ctl_update(&k, cur, Some("status"));
                }
            } else {
                // Resize completes.
                let want = pvc.pointer("/spec/resources/requests/storage").cloned();
                if want.is_some() && pvc.pointer("/status/capacity/storage") != want.as_ref() {
                    let mut new = pvc.clone();
                    new["status"]["capacity"]["storage"] = want.unwrap_or(Value::Null);
                    changed |= self.ctl_update(&k, new, Some("status"));
                }
            }
        }
        changed
    }

    fn rendered(&self, k: &Key) -> Value {
        match (self.type_of_plural(&k.0, &k.1), self.objects.get(k)) {
            (Some(ti), Some(st)) => self.render(ti, st),
            _ => Value::Null,
        }
    }

    fn default_class(&self) -> Option<String> {
        self.objects
            .iter()
            .filter(|(k, _)| k.0 == "storage.k8s.io" && k.1 == "storageclasses")
            .find(|(_, s)| {
                s.obj
                    .pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class")
                    .and_then(Value::as_str)
                    == Some("true")
            })
            .map(|(k, _)| k.3.clone())
    }

    fn claims_of(pod: &Value) -> Vec<String> {
        pod.pointer("/spec/volumes")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter_map(|v| {
                        v.pointer("/persistentVolumeClaim/claimName")
                            .and_then(Value::as_str)
                    })
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn pvc_in_use(&self, pvc: &Key) -> bool {
        self.objects
            .iter()
            .filter(|(k, _)| k.0.is_empty() && k.1 == "pods" && k.2 == pvc.2)
            .any(|(_, p)| Self::claims_of(&p.obj).contains(&pvc.3))
    }

    fn reconcile_pods(&mut self) -> bool {
        let mut changed = false;
        for k in self.keys_of("", "pods") {
            let Some(pod) = self.obj(&k) else { continue };
            if pod.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let rendered = self.rendered(&k);
            let created = s(&pod, "/metadata/creationTimestamp").to_string();
            let fault = self
                .ctl
                .pod_faults
                .get(&(k.2.clone(), k.3.clone()))
                .cloned();
            let unbound: Vec<String> = Self::claims_of(&pod)
                .into_iter()
                .filter(|c| {
                    self.obj(&key("", "persistentvolumeclaims", &k.2, c))
                        .is_none_or(|p| s(&p, "/status/phase") != "Bound")
                })
                .collect();
            let containers: Vec<Value> = pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let cond = |t: &str, st: bool, reason: Option<&str>, msg: Option<&str>| {
                let mut c = json!({"type": t, "status": if st {"True"} else {"False"}, "lastProbeTime": null, "lastTransitionTime": created});
                if let Some(r) = reason {
                    c["reason"] = json!(r);
                }
                if let Some(m) = msg {
                    c["message"] = json!(m);
                }
                c
            };
            let unschedulable = match (&fault, unbound.is_empty()) {
                (Some(PodFault::Unschedulable(m)), _) => Some(m.clone()),
                (_, false) => {
                    let pending_fault = unbound
                        .iter()
                        .any(|c| self.ctl.pvc_faults.contains_key(&(k.2.clone(), c.clone())));
                    pending_fault.then(|| "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.".to_string())
                }
                _ => None,
            };
            let mut status = Map::new();
            if let Some(msg) = unschedulable {
                status.insert("phase".into(), json!("Pending"));
                status.insert(
                    "conditions".into(),
                    json!([cond(
                        "PodScheduled",
                        false,
                        Some("Unschedulable"),
                        Some(&msg)
                    )]),
                );
                status.insert("qosClass".into(), json!("BestEffort"));
                self.event(
                    &rendered,
                    "Pod",
                    "FailedScheduling",
                    "Warning",
                    &msg,
                    "default-scheduler",
                );
            } else if !unbound.is_empty() {
                // Waiting for binding (e.g. WaitForFirstConsumer): stays Pending quietly.
                continue;
            } else {
                let node = format!(
                    "aks-pool-{}-vmss00000{}",
                    util::fnv(k.2.as_bytes()) % 7,
                    util::fnv(k.3.as_bytes()) % 3
                );
                let ok_all = fault.is_none();
                let mut statuses = Vec::new();
                for (i, c) in containers.iter().enumerate() {
                    let cname = s(c, "/name").to_string();
                    let image = s(c, "/image").to_string();
                    let mut cs = json!({"name": cname, "image": image, "imageID": "", "ready": ok_all, "restartCount": 0, "started": ok_all});
                    match (&fault, i) {
                        (Some(PodFault::CrashLoopBackOff), 0) => {
                            let pod_name = k.3.clone();
                            cs["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 5m0s restarting failed container={cname} pod={pod_name}_{}({})", k.2, s(&pod, "/metadata/uid"))}});
                            cs["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": created, "finishedAt": created}});
                            cs["restartCount"] = json!(5);
                            cs["started"] = json!(false);
                            let msg = format!(
                                "Back-off restarting failed container {cname} in pod {pod_name}_{}({})",
                                k.2,
                                s(&pod, "/metadata/uid")
                            );
                            self.event(&rendered, "Pod", "BackOff", "Warning", &msg, "kubelet");
                        }
                        (Some(PodFault::ImagePullBackOff), 0) => {
                            cs["state"] = json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}});
                            cs["started"] = json!(false);
                            let msg = format!(
                                "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"
                            );
                            self.event(&rendered, "Pod", "Failed", "Warning", &msg, "kubelet");
                            self.event(
                                &rendered,
                                "Pod",
                                "BackOff",
                                "Normal",
                                &format!("Back-off pulling image \"{image}\""),
                                "kubelet",
                            );
                        }
                        (Some(_), _) => {
                            cs["state"] = json!({"running": {"startedAt": created}});
                            cs["ready"] = json!(true);
                            cs["started"] = json!(true);
                        }
                        (None, _) => {
                            cs["state"] = json!({"running": {"startedAt": created}});
                        }
                    }
                    statuses.push(cs);
                }
                let phase = if matches!(fault, Some(PodFault::ImagePullBackOff)) {
                    "Pending"
                } else {
                    "Running"
                };
                status.insert("phase".into(), json!(phase));
                let (ready_reason, ready_msg) = if ok_all {
                    (None, None)
                } else {
                    let names: Vec<&str> =
                        containers.iter().map(|c| s(c, "/name")).take(1).collect();
                    (
                        Some("ContainersNotReady"),
                        Some(format!(
                            "containers with unready status: [{}]",
                            names.join(" ")
                        )),
                    )
                };
                status.insert(
                    "conditions".into(),
                    json!([
                        cond("PodReadyToStartContainers", true, None, None),
                        cond("Initialized", true, None, None),
                        cond("Ready", ok_all, ready_reason, ready_msg.as_deref()),
                        cond(
                            "ContainersReady",
                            ok_all,
                            ready_reason,
                            ready_msg.as_deref()
                        ),
                        cond("PodScheduled", true, None, None),
                    ]),
                );
                status.insert("hostIP".into(), json!("10.224.0.4"));
                status.insert(
                    "podIP".into(),
                    json!(format!(
                        "10.244.{}.{}",
                        util::fnv(k.2.as_bytes()) % 250,
                        util::fnv(k.3.as_bytes()) % 250 + 2
                    )),
                );
                status.insert("startTime".into(), json!(created));
                status.insert("containerStatuses".into(), Value::Array(statuses));
                status.insert("qosClass".into(), json!("BestEffort"));
                if pod.pointer("/spec/nodeName").is_none() {
                    let mut new = pod.clone();
                    new["spec"]["nodeName"] = json!(node);
                    changed |= self.ctl_update(&k, new, None);
                }
            }
            if let Some(mut cur) = self.obj(&k) {
                cur["status"] = Value::Object(status);
                changed |= self.ctl_update(&k, cur, Some("status"));
            }
        }
        changed
    }

    fn reconcile_sts(&mut self, k: &Key) -> bool {
        let Some(sts) = self.obj(k) else { return false };
        if sts.pointer("/metadata/deletionTimestamp").is_some() {
            return false;
        }
        let mut changed = false;
        let (ns, name) = (k.2.clone(), k.3.clone());
        let uid = s(&sts, "/metadata/uid").to_string();
        let replicas = sts
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize;
        let parallel = s(&sts, "/spec/podManagementPolicy") == "Parallel";
        let on_delete = s(&sts, "/spec/updateStrategy/type") == "OnDelete";
        let partition = sts
            .pointer("/spec/updateStrategy/rollingUpdate/partition")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let template = sts.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let rev = format!(
            "{name}-{:010x}",
            util::fnv(
                serde_json::to_string(&template)
                    .unwrap_or_default()
                    .as_bytes()
            ) & 0xff_ffff_ffff
        );
        let vcts: Vec<Value> = sts
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let sel_labels = sts
            .pointer("/spec/selector/matchLabels")
            .cloned()
            .unwrap_or(json!({}));
        let owner = json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]);

        // Pods by ordinal (adopting orphans with our name pattern).
        let mut pods: HashMap<usize, Value> = HashMap::new();
        for pk in self.keys_of("", "pods") {
            if pk.2 != ns {
                continue;
            }
            let Some(ord) =
                pk.3.strip_prefix(&format!("{name}-"))
                    .and_then(|o| o.parse::<usize>().ok())
            else {
                continue;
            };
            let Some(pod) = self.obj(&pk) else { continue };
            let owner_uid = pod
                .pointer("/metadata/ownerReferences/0/uid")
                .and_then(Value::as_str)
                .map(String::from);
            match owner_uid {
                Some(u) if u == uid => {}
                Some(_) => continue,
                None => {
                    let mut adopted = pod.clone();
                    adopted["metadata"]["ownerReferences"] = owner.clone();
                    changed |= self.ctl_update(&pk, adopted, None);
                }
            }
            if let Some(p) = self.obj(&pk) {
                pods.insert(ord, p);
            }
        }

        let make_pod = |i: usize| {
            let pod_name = format!("{name}-{i}");
            let mut labels = template
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            labels["controller-revision-hash"] = json!(rev);
            labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
            labels["apps.kubernetes.io/pod-index"] = json!(i.to_string());
            let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
            spec["hostname"] = json!(pod_name);
            if let Some(svc) = sts.pointer("/spec/serviceName") {
                spec["subdomain"] = svc.clone();
            }
            let mut vols = spec
                .get("volumes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for v in &vcts {
                let vn = s(v, "/metadata/name");
                vols.retain(|x| s(x, "/name") != vn);
                vols.push(json!({"name": vn, "persistentVolumeClaim": {"claimName": format!("{vn}-{name}-{i}")}}));
            }
            if !vols.is_empty() {
                spec["volumes"] = Value::Array(vols);
            }
            let mut meta = json!({"name": pod_name, "namespace": ns, "labels": labels, "ownerReferences": owner});
            if let Some(a) = template.pointer("/metadata/annotations") {
                meta["annotations"] = a.clone();
            }
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": "Pending"}})
        };

        // Create missing pods (and their claims).
        for i in 0..replicas {
            match pods.get(&i) {
                Some(p) => {
                    if !parallel && !is_ready(p) {
                        break;
                    }
                }
                None => {
                    for v in &vcts {
                        let vn = s(v, "/metadata/name");
                        let claim = format!("{vn}-{name}-{i}");
                        if self
                            .obj(&key("", "persistentvolumeclaims", &ns, &claim))
                            .is_none()
                        {
                            let mut spec = v.get("spec").cloned().unwrap_or(json!({}));
                            if let Value::Object(m) = &mut spec {
                                m.shift_remove("dataSource");
                            }
                            let mut labels = sel_labels.clone();
                            if let Some(Value::Object(l)) = v.pointer("/metadata/labels") {
                                for (a, b) in l {
                                    labels[a] = b.clone();
                                }
                            }
                            let pvc = json!({
                                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                "metadata": {"name": claim, "namespace": ns, "labels": labels, "finalizers": ["kubernetes.io/pvc-protection"]},
                                "spec": spec,
                            });
                            changed |= self.ctl_create(pvc);
                        }
                    }
                    let pod = make_pod(i);
                    changed |= self.ctl_create(pod.clone());
                    if let Some(p) = self.obj(&key("", "pods", &ns, &format!("{name}-{i}"))) {
                        pods.insert(i, p);
                    }
                    if !parallel {
                        break;
                    }
                }
            }
        }
        let all_ready = (0..replicas).all(|i| pods.get(&i).is_some_and(is_ready));
        // Scale down: highest ordinal first.
        let mut extra: Vec<usize> = pods.keys().copied().filter(|o| *o >= replicas).collect();
        extra.sort_unstable_by(|a, b| b.cmp(a));
        if !extra.is_empty() && (parallel || all_ready) {
            let take = if parallel { extra.len() } else { 1 };
            for o in extra.into_iter().take(take) {
                let pk = key("", "pods", &ns, &format!("{name}-{o}"));
                if let Some(ti) = self.type_of_plural("", "pods") {
                    self.delete_now(ti, &pk);
                    changed = true;
                }
                pods.remove(&o);
            }
        } else if all_ready && !on_delete {
            // Rolling update: highest stale ordinal ≥ partition, one at a time.
            let stale = (partition..replicas).rev().find(|i| {
                pods.get(i)
                    .is_some_and(|p| s(p, "/metadata/labels/controller-revision-hash") != rev)
            });
            if let Some(i) = stale {
                let pk = key("", "pods", &ns, &format!("{name}-{i}"));
                if let Some(ti) = self.type_of_plural("", "pods") {
                    self.delete_now(ti, &pk);
                    self.ctl_create(make_pod(i));
                    if let Some(p) = self.obj(&pk) {
                        pods.insert(i, p);
                    }
                    changed = true;
                }
            }
        }
        // Status.
        let n = pods.len();
        let ready = pods.values().filter(|p| is_ready(p)).count();
        let updated = pods
            .values()
            .filter(|p| s(p, "/metadata/labels/controller-revision-hash") == rev)
            .count();
        let old_current = s(&sts, "/status/currentRevision").to_string();
        let current_rev = if (updated == replicas && n == replicas) || old_current.is_empty() {
            rev.clone()
        } else {
            old_current
        };
        let current = pods
            .values()
            .filter(|p| s(p, "/metadata/labels/controller-revision-hash") == current_rev)
            .count();
        let mut st = Map::new();
        if let Some(g) = sts.pointer("/metadata/generation") {
            st.insert("observedGeneration".into(), g.clone());
        }
        st.insert("replicas".into(), json!(n));
        if ready > 0 {
            st.insert("readyReplicas".into(), json!(ready));
        }
        if current > 0 {
            st.insert("currentReplicas".into(), json!(current));
        }
        if updated > 0 {
            st.insert("updatedReplicas".into(), json!(updated));
        }
        st.insert("currentRevision".into(), json!(current_rev));
        st.insert("updateRevision".into(), json!(rev));
        st.insert("collisionCount".into(), json!(0));
        st.insert("availableReplicas".into(), json!(ready));
        if let Some(mut cur) = self.obj(k) {
            cur["status"] = Value::Object(st);
            changed |= self.ctl_update(k, cur, Some("status"));
        }
        changed
    }

    fn reconcile_external_secrets(&mut self) -> bool {
        let mut changed = false;
        for k in self.keys_of("external-secrets.io", "secretstores") {
            let Some(store) = self.obj(&k) else { continue };
            let created = s(&store, "/metadata/creationTimestamp").to_string();
            let mut cur = store.clone();
            cur["status"] = json!({
                "conditions": [{"type": "Ready", "status": "True", "reason": "Valid", "message": "store validated", "lastTransitionTime": created}],
                "capabilities": "ReadWrite",
            });
            changed |= self.ctl_update(&k, cur, Some("status"));
        }
        for k in self.keys_of("external-secrets.io", "externalsecrets") {
            let Some(es) = self.obj(&k) else { continue };
            let created = s(&es, "/metadata/creationTimestamp").to_string();
            let target = es
                .pointer("/spec/target/name")
                .and_then(Value::as_str)
                .unwrap_or(&k.3)
                .to_string();
            let fault = self.ctl.es_faults.get(&(k.2.clone(), k.3.clone())).cloned();
            let cond = match &fault {
                Some(m) => {
                    json!({"type": "Ready", "status": "False", "reason": "SecretSyncedError", "message": m, "lastTransitionTime": created})
                }
                None => {
                    json!({"type": "Ready", "status": "True", "reason": "SecretSynced", "message": "secret synced", "lastTransitionTime": created})
                }
            };
            let mut status = json!({"conditions": [cond], "refreshTime": created});
            if fault.is_none() {
                status["binding"] = json!({"name": target});
                status["syncedResourceVersion"] = json!(format!(
                    "{}-{}",
                    es.pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1),
                    util::fnv(
                        serde_json::to_string(&es["spec"])
                            .unwrap_or_default()
                            .as_bytes()
                    ) % 1_000_000
                ));
            }
            let mut cur = es.clone();
            cur["status"] = status;
            changed |= self.ctl_update(&k, cur, Some("status"));
            if fault.is_some() {
                let rendered = self.rendered(&k);
                let msg = fault.unwrap_or_default();
                self.event(
                    &rendered,
                    "ExternalSecret",
                    "UpdateFailed",
                    "Warning",
                    &msg,
                    "external-secrets",
                );
                continue;
            }
            let sk = key("", "secrets", &k.2, &target);
            if self.obj(&sk).is_none() {
                let mut data = Map::new();
                for d in es
                    .pointer("/spec/data")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    let sk_name = s(&d, "/secretKey").to_string();
                    let remote = s(&d, "/remoteRef/key").to_string();
                    data.insert(
                        sk_name,
                        json!(util::base64(format!("value-of-{remote}").as_bytes())),
                    );
                }
                let secret = json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": target, "namespace": k.2,
                        "labels": {"reconcile.external-secrets.io/managed": "true"},
                        "ownerReferences": [{"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "name": k.3,
                            "uid": s(&es, "/metadata/uid"), "controller": true, "blockOwnerDeletion": true}]},
                    "type": "Opaque", "data": data,
                });
                changed |= self.ctl_create(secret);
            }
        }
        changed
    }

    fn reconcile_pdbs(&mut self) -> bool {
        let mut changed = false;
        for k in self.keys_of("policy", "poddisruptionbudgets") {
            let Some(pdb) = self.obj(&k) else { continue };
            let sel = pdb
                .pointer("/spec/selector/matchLabels")
                .cloned()
                .unwrap_or(json!({}));
            let pods: Vec<Value> = self
                .objects
                .iter()
                .filter(|(pk, _)| pk.0.is_empty() && pk.1 == "pods" && pk.2 == k.2)
                .filter(|(_, p)| {
                    sel.as_object().is_some_and(|m| {
                        !m.is_empty()
                            && m.iter().all(|(a, b)| {
                                p.obj.pointer("/metadata/labels").and_then(|l| l.get(a)) == Some(b)
                            })
                    })
                })
                .map(|(_, p)| p.obj.clone())
                .collect();
            let expected = pods.len() as i64;
            let healthy = pods.iter().filter(|p| is_ready(p)).count() as i64;
            let count = |v: &Value| -> Option<i64> {
                match v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s
                        .strip_suffix('%')
                        .and_then(|p| p.parse::<i64>().ok())
                        .map(|p| (p * expected + 99) / 100),
                    _ => None,
                }
            };
            let desired = match (
                pdb.pointer("/spec/minAvailable"),
                pdb.pointer("/spec/maxUnavailable"),
            ) {
                (Some(m), _) => count(m).unwrap_or(0),
                (None, Some(m)) => expected - count(m).unwrap_or(0),
                _ => 0,
            }
            .max(0);
            let mut cur = pdb.clone();
            cur["status"] = json!({
                "observedGeneration": pdb.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
                "disruptionsAllowed": (healthy - desired).max(0),
                "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
            });
            changed |= self.ctl_update(&k, cur, Some("status"));
        }
        changed
    }
}
