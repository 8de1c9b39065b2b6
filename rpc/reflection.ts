import { ReflectionService } from "@grpc/reflection";
import type { PackageDefinition } from "@grpc/proto-loader";
import { toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/**
 * @grpc/reflection only reads `fileDescriptorProtos` from the package
 * definition it is given, so the binary descriptors of our generated files
 * (with every dependency) are enough to make `grpcurl list` and `describe` work.
 */
export function reflectionFor(services: readonly DescService[]): ReflectionService {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    for (const dep of file.dependencies) visit(dep);
  };
  for (const service of services) visit(service.file);
  const fileDescriptorProtos = [...files.values()].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  const definition = { descriptors: { fileDescriptorProtos } } as unknown as PackageDefinition;
  return new ReflectionService(definition, { services: services.map((s) => s.typeName) });
}
