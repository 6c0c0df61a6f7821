// Lints and parses the Dockerfiles (dockerfile-utils' validator, dockerfile-ast's parser) and checks what the images
// promise: multi-stage, base images from ARGs (a CUDA runtime base for the GPU image), a final non-root USER, a
// HEALTHCHECK that runs the /health probe, ENTRYPOINT ["tessera"], and no syntax the classic builder rejects.
// usage: node check_dockerfile.js Dockerfile [--gpu] ... ; prints one line per problem, exit 1 if any.
'use strict';
const fs = require('fs');
const path = require('path');
const { DockerfileParser } = require('./node/node_modules/dockerfile-ast');
const { validate } = require('./node/node_modules/dockerfile-utils');

function check(file, gpu) {
  const problems = [];
  const text = fs.readFileSync(file, 'utf8');
  const name = path.basename(file);
  for (const d of validate(text)) {
    problems.push(`${name}:${d.range.start.line + 1}: lint: ${d.message}`);
  }
  const dockerfile = DockerfileParser.parse(text);
  const initialArgs = new Map(dockerfile.getInitialARGs().map(a => [a.getProperty().getName(), a.getProperty().getValue()]));
  const froms = dockerfile.getFROMs();
  if (froms.length < 2) problems.push(`${name}: ${froms.length} stage(s); expected a multi-stage build`);
  const stages = new Set(froms.map(f => f.getBuildStage()).filter(Boolean));
  for (const from of froms) {
    const image = from.getImage();
    const arg = /^\$\{?(\w+)\}?$/.exec(image || '');
    if (stages.has(image)) continue;
    if (!arg) problems.push(`${name}:${from.getRange().start.line + 1}: FROM ${image}: base image is not a build ARG`);
    else if (!initialArgs.get(arg[1])) problems.push(`${name}: FROM ${image}: ARG ${arg[1]} has no default before the first FROM`);
  }
  const last = froms[froms.length - 1];
  const runtimeArg = /^\$\{?(\w+)\}?$/.exec(last.getImage() || '');
  const runtimeImage = runtimeArg ? initialArgs.get(runtimeArg[1]) || '' : '';
  if (gpu && !/^nvidia\/cuda:[^ ]*-runtime-/.test(runtimeImage)) {
    problems.push(`${name}: final stage base ${runtimeImage} is not an NVIDIA CUDA runtime image`);
  }
  const finalStage = dockerfile.getInstructions().filter(i => i.getRange().start.line >= last.getRange().start.line);
  const keyword = k => finalStage.filter(i => i.getKeyword() === k);
  const users = keyword('USER');
  const user = users.length ? users[users.length - 1].getArgumentsContent() : 'root';
  if (/^(root|0)(:|$)/.test(user)) problems.push(`${name}: the final stage runs as ${user}; expected a non-root USER`);
  const health = keyword('HEALTHCHECK');
  if (health.length !== 1 || !/tessera-healthcheck/.test(health[0].getArgumentsContent() || '')) {
    problems.push(`${name}: the final stage needs one HEALTHCHECK running tessera-healthcheck (GET /health)`);
  }
  const entry = keyword('ENTRYPOINT');
  if (entry.length !== 1 || entry[0].getArgumentsContent().replace(/\s/g, '') !== '["tessera"]') {
    problems.push(`${name}: ENTRYPOINT must be ["tessera"]`);
  }
  if (!keyword('VOLUME').some(v => /\/models/.test(v.getArgumentsContent()))) {
    problems.push(`${name}: no VOLUME for /models (models come from a mounted volume)`);
  }
  // BuildKit-only syntax: heredocs, RUN --mount/--network/--security, COPY --link/--chmod/--parents, # syntax= directives.
  if (/<<-?\s*['"]?\w+/.test(text)) problems.push(`${name}: heredoc (BuildKit only)`);
  for (const i of dockerfile.getInstructions()) {
    for (const f of (i.getFlags ? i.getFlags() : [])) {
      if (['mount', 'network', 'security', 'link', 'chmod', 'parents', 'exclude'].includes(f.getName())) {
        problems.push(`${name}:${i.getRange().start.line + 1}: ${i.getKeyword()} --${f.getName()} (BuildKit only)`);
      }
    }
  }
  if (/^#\s*syntax\s*=/m.test(text)) problems.push(`${name}: # syntax= directive (BuildKit only)`);
  // Every file the build COPYs from the context must exist (the context is the repository root).
  const root = path.resolve(path.dirname(file), '..');
  for (const copy of dockerfile.getInstructions().filter(i => i.getKeyword() === 'COPY')) {
    if (copy.getFlags().some(f => f.getName() === 'from')) continue;
    const args = copy.getArguments().map(a => a.getValue());
    for (const source of args.slice(0, -1)) {
      if (source !== '.' && !fs.existsSync(path.join(root, source))) problems.push(`${name}: COPY ${source}: no such file in the build context`);
    }
  }
  return { problems, stages: froms.length };
}

let failed = 0;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--gpu') continue;
  const { problems, stages } = check(args[i], args[i + 1] === '--gpu');
  problems.forEach(p => console.log(p));
  console.log(`check_dockerfile: ${path.basename(args[i])}: ${stages} stages, ${problems.length} problems`);
  failed += problems.length;
}
process.exit(failed ? 1 : 0);
