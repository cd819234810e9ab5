# Sourced by up.sh: the cluster's keys and certificates, made once by openssl into $K8S_STATE_DIR/pki and kept
# (a restarted cluster keeps its identities, and kubeconfigs written before stay valid).
#
#   ca.{crt,key}             the cluster's CA: signs every certificate below; clients trust it
#   apiserver.{crt,key}      kube-apiserver's serving certificate (127.0.0.1, localhost, kubernetes.default...)
#   kwok-serving.{crt,key}   kwok's "kubelet" server (127.0.0.1), which serves pod logs to the API server
#   admin.{crt,key}          CN=troupe-admin, O=system:masters: the tests' administrator
#   apiserver-kubelet-client the API server's client certificate towards the kubelet (kwok)
#   kube-scheduler, kube-controller-manager, kwok: the components' client certificates
#   sa.{key,pub}             service-account token signing keys
make_pki() {
  local pki=$K8S_STATE_DIR/pki
  mkdir -p "$pki"
  chmod 700 "$pki"
  [ -s "$pki/done" ] && return 0
  (
    umask 077
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=troupe-test-cluster-ca" 2>/dev/null
    # NAME CN O SANs(or empty) USAGE(server|client)
    issue() {
      local name=$1 cn=$2 org=$3 sans=$4 usage=$5 subject="/CN=$2"
      [ -n "$org" ] && subject="/O=$org/CN=$cn"
      openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject" 2>/dev/null
      {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        if [ "$usage" = server ]; then echo "extendedKeyUsage=serverAuth"; else echo "extendedKeyUsage=clientAuth"; fi
        [ -n "$sans" ] && echo "subjectAltName=$sans"
      } >"$name.ext"
      openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" -days 3650 \
        -extfile "$name.ext" 2>/dev/null
      rm -f "$name.csr" "$name.ext"
    }
    issue apiserver kube-apiserver "" \
      "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1" server
    issue kwok-serving kwok "" "IP:127.0.0.1,DNS:localhost" server
    issue admin troupe-admin system:masters "" client
    issue apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "" client
    issue kube-scheduler system:kube-scheduler "" "" client
    issue kube-controller-manager system:kube-controller-manager "" "" client
    # kwok plays every node's kubelet and patches any pod's status: an administrator, as kwok's docs set it up.
    issue kwok kwok-controller system:masters "" client
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    date -u +%FT%TZ >done
  )
}

# Writes a kubeconfig for the API server to $1: with a client certificate (NAME of a pair in pki/) or a token.
#   write_kubeconfig FILE USER cert NAME | write_kubeconfig FILE USER token TOKEN
write_kubeconfig() {
  local file=$1 user=$2 kind=$3 value=$4 pki=$K8S_STATE_DIR/pki credentials
  if [ "$kind" = cert ]; then
    credentials="    client-certificate-data: $(base64 -w0 <"$pki/$value.crt")
    client-key-data: $(base64 -w0 <"$pki/$value.key")"
  else
    credentials="    token: $value"
  fi
  (
    umask 077
    cat >"$file.partial" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: troupe-test
  cluster:
    server: https://127.0.0.1:$K8S_PORT
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
contexts:
- name: $user@troupe-test
  context:
    cluster: troupe-test
    user: $user
current-context: $user@troupe-test
users:
- name: $user
  user:
$credentials
KUBECONFIG
    mv "$file.partial" "$file"
  )
}
