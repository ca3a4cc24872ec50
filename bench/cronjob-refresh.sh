#!/usr/bin/env bash
# What many clusters run instead of an operator: a CronJob that logs in to ECR with the AWS CLI and
# writes the pull Secret into every namespace with kubectl, one namespace after another, then points
# the default ServiceAccount at it. The benchmark runs it once, as a reference.
#   REGISTRY=<host> SECRET_NAME=<name> NAMESPACES="<ns> <ns> ..." bench/cronjob-refresh.sh
# AWS credentials, region and endpoint, and KUBECONFIG, come from the environment.
set -euo pipefail

password=$(aws ecr get-login-password)
for namespace in $NAMESPACES; do
  kubectl create secret docker-registry "$SECRET_NAME" \
    --namespace "$namespace" \
    --docker-server "$REGISTRY" \
    --docker-username AWS \
    --docker-password "$password" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl patch serviceaccount default --namespace "$namespace" \
    -p "{\"imagePullSecrets\":[{\"name\":\"$SECRET_NAME\"}]}" >/dev/null
done
