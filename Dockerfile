# The relay function's image: the AWS Lambda Python 3.12 base with app/ and its pinned dependencies.
# `sam build` builds it (template.yaml names this file in the function's Metadata).
FROM public.ecr.aws/lambda/python:3.12

# Dependencies first, so this layer is rebuilt only when the lock changes. app/requirements.lock pins
# every package to the file tested, by hash (`make lock` writes it from app/requirements.txt):
# --require-hashes refuses any other file, --no-deps anything the lock does not list. flanker publishes
# no wheel; its build runs with the hashed setuptools of app/build-requirements.lock (installed apart,
# not into the image) instead of pip's isolated build, which would fetch setuptools unchecked.
COPY app/requirements.lock ${LAMBDA_TASK_ROOT}/app/requirements.lock
COPY app/build-requirements.lock ${LAMBDA_TASK_ROOT}/app/build-requirements.lock
RUN tools="$(mktemp -d)" \
    && pip install --no-cache-dir --require-hashes --no-deps --target "$tools" \
        -r ${LAMBDA_TASK_ROOT}/app/build-requirements.lock \
    && PYTHONPATH="$tools" pip install --no-cache-dir --require-hashes --no-deps --no-build-isolation \
        --target ${LAMBDA_TASK_ROOT} -r ${LAMBDA_TASK_ROOT}/app/requirements.lock \
    && rm -rf "$tools"

# flanker's address parser rebuilds its ply parse tables into its own package directory on first
# import (printing "Symbol ... is unreachable" warnings) when the shipped tables do not match. The
# task root is read-only at run time, so build the tables and their bytecode now: every cold start
# then loads them quietly instead of regenerating them. `-f`: the tables can be rewritten within the
# second pip wrote them, and compileall's freshness check (mtime only) would keep bytecode that the
# import system (mtime and size) then rejects and tries to rewrite; unchecked-hash pycs are never
# re-validated against a source that cannot change in the image.
RUN PYTHONPATH=${LAMBDA_TASK_ROOT} python3.12 -c "from flanker.addresslib import address; address.parse('a@b.c')" \
    && python3.12 -m compileall -q -f --invalidation-mode unchecked-hash ${LAMBDA_TASK_ROOT}/flanker/addresslib/_parser

COPY app/ ${LAMBDA_TASK_ROOT}/app/
RUN python3.12 -m compileall -q -f --invalidation-mode unchecked-hash ${LAMBDA_TASK_ROOT}/app

CMD ["app.handler.lambda_handler"]
