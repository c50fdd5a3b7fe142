# The page for Kubernetes: web/ and the catalogue of served models (written by `make mar`) in an
# unprivileged nginx that serves static files on 8080 (docker/nginx/page.conf). The Ingress
# routes the prediction paths to TorchServe itself (kubernetes/base/ingress.yaml).
#   make mar && docker build -f docker/web.Dockerfile -t digit-lens/web:1.0 .
FROM nginxinc/nginx-unprivileged:1.27-alpine
COPY docker/nginx/page.conf /etc/nginx/conf.d/default.conf
COPY web/ /usr/share/nginx/html/
COPY model_store/models.json /usr/share/nginx/html/models.json
