# The relay function's image: the AWS Lambda Python 3.12 base with app/ and its pinned dependencies.
# `sam build` builds it (template.yaml names this file in the function's Metadata).
FROM public.ecr.aws/lambda/python:3.12

# Dependencies first, so this layer is rebuilt only when app/requirements.txt changes.
COPY app/requirements.txt ${LAMBDA_TASK_ROOT}/app/requirements.txt
RUN pip install --no-cache-dir -r ${LAMBDA_TASK_ROOT}/app/requirements.txt --target ${LAMBDA_TASK_ROOT}

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
